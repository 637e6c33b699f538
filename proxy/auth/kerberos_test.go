package auth

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/internal/kdctest"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// TestKerberosAcceptsTicket: a ticket of the realm for the proxy's service logs
// alice in with no call to the KDC, under her short or full name; the mutual
// authentication token comes back when she asks for it, and proves the key.
func TestKerberosAcceptsTicket(t *testing.T) {
	k := kdctest.Start(t)
	kt := proxyKeytab(t, k)
	tk := serviceTicket(t, k, "alice@"+kdctest.Realm, kdctest.HTTPService)
	v := newKerberos(t, kerberosConfig(kt), KerberosOptions{})

	l := v.AcceptSPNEGO(tk.Negotiate(t, tokenOpts{}), loopback)
	if l.Result != KerberosOK || l.Identity.User != "alice" || l.Reply != nil || l.Context != nil {
		t.Fatalf("AcceptSPNEGO = %+v; want alice, no reply", l)
	}
	if l.Principal != "alice@"+kdctest.Realm || l.Service != kdctest.HTTPService+"@"+kdctest.Realm || !l.Expires.Equal(tk.EndTime) {
		t.Errorf("principal %q service %q expires %v; want the ticket's (ends %v)", l.Principal, l.Service, l.Expires, tk.EndTime)
	}

	tok, a := tk.Token(t, tokenOpts{Mutual: true})
	l = v.AcceptSPNEGO(spnegoInit(t, tok, oidMSKRB5, oidKRB5), loopback)
	if l.Result != KerberosOK || l.Reply == nil {
		t.Fatalf("mutual: %+v", l)
	}
	var resp spnego.NegTokenResp
	if err := resp.Unmarshal(l.Reply); err != nil {
		t.Fatal(err)
	}
	if resp.State() != spnego.NegStateAcceptCompleted || !oidMSKRB5.Equal([]int(resp.SupportedMech)) {
		t.Errorf("NegTokenResp state %d mech %v; want accept-completed, the client's first mechanism", resp.State(), resp.SupportedMech)
	}
	checkAPRep(t, resp.ResponseToken, tk.Key, a)

	full := kerberosConfig(kt)
	full.UserName = configs.KerberosFullNames
	l = newKerberos(t, full, KerberosOptions{}).AcceptSPNEGO(tk.Negotiate(t, tokenOpts{}), loopback)
	if l.Result != KerberosOK || l.Identity.User != "alice@"+kdctest.Realm {
		t.Errorf("full names: %+v", l)
	}
	// A bare Kerberos token in the Negotiate header (no SPNEGO) is accepted too.
	bare, _ := tk.Token(t, tokenOpts{})
	if l := v.AcceptSPNEGO(bare, loopback); l.Result != KerberosOK {
		t.Errorf("bare Kerberos token: %+v", l)
	}
}

// TestKerberosRefusals: each way a ticket can be wrong is refused with its own
// reason, none with a hang or a panic.
func TestKerberosRefusals(t *testing.T) {
	k := kdctest.Start(t)
	kt := proxyKeytab(t, k)
	// The legacy service's account was keyed with AES once, then with RC4 only
	// (as an Active Directory account limited to RC4): its tickets are RC4.
	k.Keytab(kt, kdctest.LegacyService)
	k.KeytabEnctypes(kt, "arcfour-hmac:normal", kdctest.LegacyService)
	cfg := kerberosConfig(kt)
	cfg.ServiceNames = append(cfg.ServiceNames, kdctest.LegacyService)
	v := newKerberos(t, cfg, KerberosOptions{})
	alice := serviceTicket(t, k, "alice@"+kdctest.Realm, kdctest.HTTPService)
	good := alice.Negotiate(t, tokenOpts{})
	if l := v.AcceptSPNEGO(good, loopback); l.Result != KerberosOK {
		t.Fatalf("good token: %+v", l)
	}
	other := serviceTicket(t, k, "alice@"+kdctest.Realm, kdctest.OtherService)
	eve := serviceTicket(t, k, "eve@"+kdctest.OtherRealm, kdctest.HTTPService+"@"+kdctest.Realm)
	legacy := serviceTicket(t, k, "alice@"+kdctest.Realm, kdctest.LegacyService)
	tampered := alice
	tampered.Ticket.EncPart.Cipher = flipLast(alice.Ticket.EncPart.Cipher)
	stale := filepath.Join(t.TempDir(), "stale.keytab")
	k.Keytab(stale, kdctest.HTTPService) // a newer key version only: alice's ticket is under the old one
	staleCfg := kerberosConfig(stale)
	staleCfg.ServiceNames = []string{kdctest.HTTPService}
	ntlm := asn1OID(1, 3, 6, 1, 4, 1, 311, 2, 2, 10)

	for _, tc := range []struct {
		name  string
		v     *Kerberos
		token []byte
		want  KerberosResult
		err   string
	}{
		{"replayed token", v, good, KerberosReplay, "seen before"},
		{"another service", v, other.Negotiate(t, tokenOpts{}),
			KerberosWrongService, "HTTP/other.campus.example@CAMPUS.EXAMPLE"},
		{"other realm", v, eve.Negotiate(t, tokenOpts{}),
			KerberosRealm, "eve@OTHER.EXAMPLE"},
		{"client clock 10 minutes fast", v, alice.Negotiate(t, tokenOpts{Skew: 10 * time.Minute}), KerberosClockSkew, "10m0s off"},
		{"client clock 10 minutes slow", v, alice.Negotiate(t, tokenOpts{Skew: -10 * time.Minute}), KerberosClockSkew, "10m0s off"},
		{"RC4 ticket", v, legacy.Negotiate(t, tokenOpts{}),
			KerberosEnctype, "arcfour-hmac"},
		{"tampered ticket", v, tampered.Negotiate(t, tokenOpts{}), KerberosIntegrity, "does not decrypt"},
		{"keytab without the ticket's key version", newKerberos(t, staleCfg, KerberosOptions{}),
			alice.Negotiate(t, tokenOpts{}), KerberosNoKey, "no aes256-cts-hmac-sha1-96 key of version 2"},
		{"server clock an hour behind", newKerberos(t, cfg, KerberosOptions{Now: func() time.Time { return time.Now().Add(-time.Hour) }}),
			alice.Negotiate(t, tokenOpts{Skew: -time.Hour}), KerberosNotYetValid, "valid from"},
		{"no GSS checksum", v, alice.Negotiate(t, tokenOpts{NoCksum: true}), KerberosMalformed, "not a GSS-API one"},
		{"NTLM first", v, spnegoInit(t, []byte("NTLMSSP\x00"), ntlm, oidKRB5), KerberosMechanism, "not Kerberos"},
		{"NegTokenResp", v, []byte{0xa1, 0x03, 0x30, 0x01, 0x00}, KerberosMechanism, "continuation"},
		{"garbage", v, []byte("not a token at all"), KerberosMalformed, "not a GSS-API initial token"},
		{"truncated", v, good[:len(good)/2], KerberosMalformed, "DER element"},
		{"empty", v, nil, KerberosMalformed, "truncated"},
		{"oversized", v, make([]byte, MaxKerberosToken+1), KerberosMalformed, "token of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.v.AcceptSPNEGO(tc.token, loopback)
			if l.Result != tc.want || l.Err == nil || !strings.Contains(l.Err.Error(), tc.err) {
				t.Errorf("result %s (%v); want %s with an error containing %q", l.Result, l.Err, tc.want, tc.err)
			}
			if l.Identity != (Identity{}) || l.Reply != nil || l.Context != nil {
				t.Errorf("a refusal carries %+v", l)
			}
			if !tc.want.Failed() {
				t.Errorf("%s does not count as failed", tc.want)
			}
		})
	}
}

// TestKerberosExpiredTicket: a ticket past its end (and the skew) is refused as
// expired, not as a clock problem.
func TestKerberosExpiredTicket(t *testing.T) {
	k := kdctest.Start(t)
	cfg := kerberosConfig(proxyKeytab(t, k))
	cfg.MaxClockSkew = time.Second
	v := newKerberos(t, cfg, KerberosOptions{})
	tk := serviceTicket(t, k, "bob@"+kdctest.Realm, kdctest.HTTPService, "-l", "3s")
	if l := v.AcceptSPNEGO(tk.Negotiate(t, tokenOpts{}), loopback); l.Result != KerberosOK {
		t.Fatalf("before its end: %+v", l)
	}
	time.Sleep(time.Until(tk.EndTime.Add(cfg.MaxClockSkew + 500*time.Millisecond)))
	if l := v.AcceptSPNEGO(tk.Negotiate(t, tokenOpts{}), loopback); l.Result != KerberosExpired {
		t.Errorf("after its end: %+v; want expired", l)
	}
}
