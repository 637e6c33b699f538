package auth

import (
	"encoding/asn1"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/internal/kdctest"
)

type clientTicket = kdctest.Ticket

type tokenOpts = kdctest.TokenOptions

// serviceTicket gets principal a ticket for service from the KDC.
func serviceTicket(t *testing.T, k *kdctest.KDC, principal, service string, kinitArgs ...string) clientTicket {
	t.Helper()
	return k.ServiceTicket(principal, service, kinitArgs...)
}

func spnegoInit(t *testing.T, mechToken []byte, mechs ...asn1.ObjectIdentifier) []byte {
	t.Helper()
	return kdctest.SPNEGOInit(t, mechToken, mechs...)
}

// checkAPRep decodes a GSS-API AP-REP token as a client would and checks that it
// answers the authenticator: that the proxy holds the service key.
func checkAPRep(t *testing.T, token []byte, key types.EncryptionKey, a types.Authenticator) messages.EncAPRepPart {
	t.Helper()
	oid, inner, err := decodeInitialToken(token)
	if err != nil || !oid.Equal(oidKRB5) || [2]byte(inner[:2]) != tokAPRep {
		t.Fatalf("AP-REP token %x: %v", token, err)
	}
	var rep messages.APRep
	if err := rep.Unmarshal(inner[2:]); err != nil {
		t.Fatal(err)
	}
	plain, err := crypto.DecryptEncPart(rep.EncPart, key, keyusage.AP_REP_ENCPART)
	if err != nil {
		t.Fatalf("AP-REP does not decrypt with the session key: %v", err)
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	if !part.CTime.Equal(a.CTime.Truncate(time.Second)) || part.Cusec != a.Cusec {
		t.Errorf("AP-REP time %v.%06d; want the authenticator's %v.%06d", part.CTime, part.Cusec, a.CTime, a.Cusec)
	}
	return part
}

// kerberosConfig is the auth.kerberos block of the tests: the proxy's two
// services, the campus realm, short names.
func kerberosConfig(keytab string) configs.Kerberos {
	return configs.Kerberos{KeytabFile: keytab, ServiceNames: []string{kdctest.HTTPService, kdctest.SOCKSService},
		Realms: []string{kdctest.Realm}, UserName: configs.KerberosShortNames, MaxClockSkew: 5 * time.Minute,
		Enctypes: configs.DefaultKerberosEnctypes()}
}

// proxyKeytab exports the proxy's keys (a new key version) into a keytab in the
// test's folder.
func proxyKeytab(t *testing.T, k *kdctest.KDC) string {
	t.Helper()
	kt := filepath.Join(t.TempDir(), "proxy.keytab")
	k.Keytab(kt, kdctest.HTTPService, kdctest.SOCKSService)
	return kt
}

func newKerberos(t *testing.T, cfg configs.Kerberos, opts KerberosOptions) *Kerberos {
	t.Helper()
	v, err := NewKerberos(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// flipLast returns b with its last bit flipped.
func flipLast(b []byte) []byte {
	b = slices.Clone(b)
	b[len(b)-1] ^= 1
	return b
}

func asn1OID(ids ...int) asn1.ObjectIdentifier { return ids }
