package auth

import (
	"encoding/asn1"
	"encoding/binary"
	"path/filepath"
	"slices"
	"testing"
	"time"

	forkasn1 "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// The client side of the tests: service tickets come from the real KDC (kinit
// and kvno into a credential cache), and the AP-REQ around them is built here
// with gokrb5, as a GSS-API client would, so that a test can set what a real
// client sets (mutual authentication, a subkey) and what a broken or hostile one
// would (a skewed clock, a tampered ticket).

// clientTicket is a service ticket and its session key, from a cache.
type clientTicket struct {
	tkt     messages.Ticket
	key     types.EncryptionKey
	cname   types.PrincipalName
	crealm  string
	addrs   []types.HostAddress
	endTime time.Time
}

// serviceTicket gets principal a ticket for service from the KDC and reads it
// back from the cache.
func serviceTicket(t *testing.T, k *kdctest.KDC, principal, service string, kinitArgs ...string) clientTicket {
	t.Helper()
	cc := k.Kinit(principal, kinitArgs...)
	k.Kvno(cc, service)
	return ticketFromCache(t, cc, service)
}

func ticketFromCache(t *testing.T, cc, service string) clientTicket {
	t.Helper()
	c, err := credentials.LoadCCache(cc)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := types.ParseSPNString(service)
	cred, ok := c.GetEntry(name)
	if !ok {
		t.Fatalf("no ticket for %s in %s", service, cc)
	}
	var tkt messages.Ticket
	if err := tkt.Unmarshal(cred.Ticket); err != nil {
		t.Fatal(err)
	}
	return clientTicket{tkt: tkt, key: cred.Key, cname: c.DefaultPrincipal.PrincipalName, crealm: c.DefaultPrincipal.Realm,
		addrs: cred.Addresses, endTime: cred.EndTime}
}

// tokenOpts are what a test client puts in its authenticator.
type tokenOpts struct {
	skew     time.Duration // added to the authenticator's time
	mutual   bool
	noSubkey bool
	noCksum  bool
}

// krb5Token returns a GSS-API Kerberos initial context token (RFC 4121 4.1) for
// the ticket, and its authenticator.
func (c clientTicket) krb5Token(t *testing.T, o tokenOpts) ([]byte, types.Authenticator) {
	t.Helper()
	a, err := types.NewAuthenticator(c.crealm, c.cname)
	if err != nil {
		t.Fatal(err)
	}
	a.CTime = a.CTime.Add(o.skew)
	if !o.noSubkey {
		et, _ := crypto.GetEtype(c.key.KeyType)
		if err := a.GenerateSeqNumberAndSubKey(c.key.KeyType, et.GetKeyByteSize()); err != nil {
			t.Fatal(err)
		}
	}
	if !o.noCksum {
		ck := make([]byte, 24)
		binary.LittleEndian.PutUint32(ck, 16)
		gflags := uint32(0x20 | 0x10) // integrity, confidentiality
		if o.mutual {
			gflags |= gssMutualFlag
		}
		binary.LittleEndian.PutUint32(ck[20:], gflags)
		a.Cksum = types.Checksum{CksumType: gssChecksumType, Checksum: ck}
	}
	req, err := messages.NewAPReq(c.tkt, c.key, a)
	if err != nil {
		t.Fatal(err)
	}
	if o.mutual {
		types.SetFlag(&req.APOptions, flags.APOptionMutualRequired)
	}
	der, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return gssInitial(oidKRB5, slices.Concat(tokAPReq[:], der)), a
}

// gssInitial frames an inner token as an RFC 2743 InitialContextToken.
func gssInitial(oid asn1.ObjectIdentifier, inner []byte) []byte {
	b, _ := asn1.Marshal(oid)
	return asn1tools.AddASNAppTag(append(b, inner...), 0)
}

// spnegoInit wraps a mechanism token in an SPNEGO NegTokenInit offering mechs.
func spnegoInit(t *testing.T, mechToken []byte, mechs ...asn1.ObjectIdentifier) []byte {
	t.Helper()
	init := spnego.NegTokenInit{MechTokenBytes: mechToken}
	for _, m := range mechs {
		init.MechTypes = append(init.MechTypes, forkasn1.ObjectIdentifier(m))
	}
	b, err := init.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return gssInitial(oidSPNEGO, b)
}

// negotiate is the Negotiate token a browser sends: SPNEGO around the Kerberos
// token, Kerberos first.
func (c clientTicket) negotiate(t *testing.T, o tokenOpts) []byte {
	t.Helper()
	tok, _ := c.krb5Token(t, o)
	return spnegoInit(t, tok, oidKRB5)
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
