package configs

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
)

// The values of auth.kerberos.user_name.
const (
	// KerberosShortNames: alice@CAMPUS.EXAMPLE logs in as alice.
	KerberosShortNames = "short"
	// KerberosFullNames: alice@CAMPUS.EXAMPLE logs in as alice@CAMPUS.EXAMPLE.
	KerberosFullNames = "full"
)

// maxKerberosSkew bounds auth.kerberos.max_clock_skew: the skew is also how long an
// authenticator stays acceptable, and so how long the replay cache must hold it.
const maxKerberosSkew = time.Hour

// Kerberos is the single sign-on login: a client shows a Kerberos service ticket
// (HTTP Negotiate, SOCKS5 GSS-API), checked locally against the keytab, without a
// call to the KDC.
type Kerberos struct {
	// KeytabFile holds the service's keys (MIT ktadd, msktutil, ktpass). It is
	// read again on SIGHUP and when it changes on disk. A relative path is
	// resolved against the config file's folder. Empty turns Kerberos off.
	KeytabFile string `yaml:"keytab_file"`
	// ServiceNames are the service principals whose tickets are accepted, as
	// service/host (HTTP/proxy.campus.example); the realm is the keytab's.
	ServiceNames []string `yaml:"service_names"`
	// Realms are the client realms accepted; principals of other realms (a
	// trusted partner's, say) are refused.
	Realms []string `yaml:"realms"`
	// UserName is how a principal becomes a user name: "short" (alice) or
	// "full" (alice@CAMPUS.EXAMPLE). "short" needs a single realm, or alice of
	// two realms would be one user.
	UserName string `yaml:"user_name"`
	// MaxClockSkew is how far a client's clock may be from ours, and how long
	// after its end time a ticket is still taken (RFC 4120). Zero means 5m.
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
	// Enctypes are the encryption types accepted for tickets and session keys,
	// by MIT name. The default is the AES types only: RC4's key is the account's
	// unsalted NT hash and DES is broken.
	Enctypes []string `yaml:"enctypes"`
	// LDAPUserFilter finds a Kerberos user's entry in auth.ldap, {user} standing
	// for the name user_name makes: (sAMAccountName={user}) for short names in
	// Active Directory, (userPrincipalName={user}) for full ones. Empty uses
	// auth.ldap.user_filter.
	LDAPUserFilter string `yaml:"ldap_user_filter"`
}

// DefaultKerberosEnctypes are the encryption types accepted when
// auth.kerberos.enctypes is not set: AES in its SHA-1 (RFC 3962) and SHA-2
// (RFC 8009) forms.
func DefaultKerberosEnctypes() []string {
	return []string{"aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96",
		"aes256-cts-hmac-sha384-192", "aes128-cts-hmac-sha256-128"}
}

func kerberosDefaults() Kerberos {
	return Kerberos{UserName: KerberosShortNames, MaxClockSkew: 5 * time.Minute, Enctypes: DefaultKerberosEnctypes()}
}

// EnctypeIDs returns the ID of each of k's enctypes, which validation has
// checked are names gokrb5 knows.
func (k *Kerberos) EnctypeIDs() []int32 {
	ids := make([]int32, 0, len(k.Enctypes))
	for _, name := range k.Enctypes {
		ids = append(ids, etypeID.EtypeSupported(name))
	}
	return ids
}

// kerberos checks auth.kerberos: off when keytab_file is empty (and then no
// other key that only Kerberos reads may be set), otherwise services, realms,
// the name form, the skew and the enctypes.
func (v *validator) kerberos(k *Kerberos, ldapURL string) {
	p := path("auth", "kerberos")
	if k.KeytabFile == "" {
		if len(k.ServiceNames) > 0 || len(k.Realms) > 0 || k.LDAPUserFilter != "" {
			v.add(p.key("keytab_file"), nil, "is empty, which turns Kerberos off, but other auth.kerberos keys are set; set keytab_file or remove them")
		}
		return
	}
	v.serviceNames(p.key("service_names"), k.ServiceNames)
	v.realms(p.key("realms"), k.Realms)
	switch k.UserName {
	case KerberosFullNames:
	case KerberosShortNames:
		if len(k.Realms) > 1 {
			v.add(p.key("user_name"), nil, fmt.Sprintf(`"short" with %d realms would make alice@%s and alice@%s one user; `+
				`use "full", or one realm`, len(k.Realms), k.Realms[0], k.Realms[1]))
		}
	default:
		v.add(p.key("user_name"), nil, fmt.Sprintf(`%q: want "short" (alice) or "full" (alice@REALM)`, k.UserName))
	}
	switch {
	case k.MaxClockSkew <= 0:
		v.add(p.key("max_clock_skew"), nil, "must be greater than 0")
	case k.MaxClockSkew > maxKerberosSkew:
		v.add(p.key("max_clock_skew"), nil, fmt.Sprintf("must be at most %v: it is how long a replayed authenticator must be remembered", maxKerberosSkew))
	}
	v.enctypes(p.key("enctypes"), k.Enctypes)
	if k.LDAPUserFilter != "" {
		if ldapURL == "" {
			v.add(p.key("ldap_user_filter"), nil, "needs auth.ldap.url: it finds Kerberos users in that directory")
		} else {
			v.userFilter(p.key("ldap_user_filter"), k.LDAPUserFilter)
		}
	}
}

// serviceNames wants service/host principals without a realm, each once.
func (v *validator) serviceNames(p fieldPath, names []string) {
	if len(names) == 0 {
		v.add(p, nil, "is required with auth.kerberos.keytab_file: the service principals clients ask tickets for, such as HTTP/proxy.campus.example")
	}
	for i, n := range names {
		service, host, ok := strings.Cut(n, "/")
		switch {
		case !ok || service == "" || host == "" || strings.ContainsAny(host, "/@") || hasSpaceOrControl(n):
			v.add(p.index(i), nil, fmt.Sprintf("%q: want service/host without a realm, such as HTTP/proxy.campus.example", n))
		case slices.ContainsFunc(names[:i], func(o string) bool { return strings.EqualFold(o, n) }):
			v.add(p.index(i), nil, fmt.Sprintf("%q is listed twice (service names compare without case)", n))
		}
	}
}

func (v *validator) realms(p fieldPath, realms []string) {
	if len(realms) == 0 {
		v.add(p, nil, "is required with auth.kerberos.keytab_file: the realms whose users may log in, such as CAMPUS.EXAMPLE")
	}
	for i, r := range realms {
		switch {
		case r == "" || strings.ContainsAny(r, "/@") || hasSpaceOrControl(r):
			v.add(p.index(i), nil, fmt.Sprintf("%q is not a realm name such as CAMPUS.EXAMPLE", r))
		case slices.Contains(realms[:i], r):
			v.add(p.index(i), nil, fmt.Sprintf("%q is listed twice", r))
		}
	}
}

// enctypes accepts the names gokrb5 can decrypt with, and refuses the single-DES
// ones it cannot: a ticket in them could never be read.
func (v *validator) enctypes(p fieldPath, names []string) {
	if len(names) == 0 {
		v.add(p, nil, "must list at least one encryption type (the default is the AES types)")
	}
	for i, n := range names {
		if etypeID.EtypeSupported(n) == 0 {
			v.add(p.index(i), nil, fmt.Sprintf("%q is not a supported encryption type; want one of %s",
				n, strings.Join(append(DefaultKerberosEnctypes(), "arcfour-hmac", "des3-cbc-sha1-kd"), ", ")))
		}
	}
}

func hasSpaceOrControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}
