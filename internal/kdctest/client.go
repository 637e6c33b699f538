package kdctest

import (
	"encoding/asn1"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	forkasn1 "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The client side of the tests: service tickets come from the real KDC (kinit
// and kvno into a credential cache), and the AP-REQ around them is built with
// gokrb5, as a GSS-API client would, so that a test can set what a real client
// sets (mutual authentication, a subkey) and what a broken or hostile one would
// (a skewed clock, a tampered ticket).

// The mechanism OIDs a client names.
var (
	OIDKRB5   = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2}
	OIDMSKRB5 = asn1.ObjectIdentifier{1, 2, 840, 48018, 1, 2, 2}
	OIDSPNEGO = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 2}
)

// Ticket is a service ticket and its session key, read from a credential cache.
type Ticket struct {
	Ticket    messages.Ticket
	Key       types.EncryptionKey
	CName     types.PrincipalName
	CRealm    string
	Addresses []types.HostAddress
	EndTime   time.Time
}

// ServiceTicket gets principal a ticket for service from the KDC (kinit with
// kinitArgs, then kvno) and reads it back from the cache.
func (k *KDC) ServiceTicket(principal, service string, kinitArgs ...string) Ticket {
	k.t.Helper()
	cc := k.Kinit(principal, kinitArgs...)
	k.Kvno(cc, service)
	c, err := credentials.LoadCCache(cc)
	if err != nil {
		k.t.Fatal(err)
	}
	name, _ := types.ParseSPNString(service)
	cred, ok := c.GetEntry(name)
	if !ok {
		k.t.Fatalf("no ticket for %s in %s", service, cc)
	}
	var tkt messages.Ticket
	if err := tkt.Unmarshal(cred.Ticket); err != nil {
		k.t.Fatal(err)
	}
	return Ticket{Ticket: tkt, Key: cred.Key, CName: c.DefaultPrincipal.PrincipalName, CRealm: c.DefaultPrincipal.Realm,
		Addresses: cred.Addresses, EndTime: cred.EndTime}
}

// TokenOptions are what a test client puts in its authenticator.
type TokenOptions struct {
	Skew     time.Duration // added to the authenticator's time
	Mutual   bool          // ask for mutual authentication
	NoSubkey bool
	NoCksum  bool // leave out the GSS-API checksum
}

// Token returns a GSS-API Kerberos initial context token (RFC 4121 4.1) for the
// ticket, and its authenticator.
func (c Ticket) Token(t testing.TB, o TokenOptions) ([]byte, types.Authenticator) {
	t.Helper()
	a, err := types.NewAuthenticator(c.CRealm, c.CName)
	if err != nil {
		t.Fatal(err)
	}
	a.CTime = a.CTime.Add(o.Skew)
	if !o.NoSubkey {
		et, _ := crypto.GetEtype(c.Key.KeyType)
		if err := a.GenerateSeqNumberAndSubKey(c.Key.KeyType, et.GetKeyByteSize()); err != nil {
			t.Fatal(err)
		}
	}
	if !o.NoCksum {
		ck := make([]byte, 24)
		binary.LittleEndian.PutUint32(ck, 16)
		gflags := uint32(0x20 | 0x10) // integrity, confidentiality
		if o.Mutual {
			gflags |= 2
		}
		binary.LittleEndian.PutUint32(ck[20:], gflags)
		a.Cksum = types.Checksum{CksumType: 0x8003, Checksum: ck}
	}
	req, err := messages.NewAPReq(c.Ticket, c.Key, a)
	if err != nil {
		t.Fatal(err)
	}
	if o.Mutual {
		types.SetFlag(&req.APOptions, flags.APOptionMutualRequired)
	}
	der, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return GSSInitial(OIDKRB5, slices.Concat([]byte{1, 0}, der)), a
}

// Negotiate is the Negotiate token a browser sends: SPNEGO around the Kerberos
// token, Kerberos first.
func (c Ticket) Negotiate(t testing.TB, o TokenOptions) []byte {
	t.Helper()
	tok, _ := c.Token(t, o)
	return SPNEGOInit(t, tok, OIDKRB5)
}

// GSSInitial frames an inner token as an RFC 2743 InitialContextToken.
func GSSInitial(oid asn1.ObjectIdentifier, inner []byte) []byte {
	b, _ := asn1.Marshal(oid)
	return asn1tools.AddASNAppTag(append(b, inner...), 0)
}

// SPNEGOInit wraps a mechanism token in an SPNEGO NegTokenInit offering mechs.
func SPNEGOInit(t testing.TB, mechToken []byte, mechs ...asn1.ObjectIdentifier) []byte {
	t.Helper()
	init := spnego.NegTokenInit{MechTokenBytes: mechToken}
	for _, m := range mechs {
		init.MechTypes = append(init.MechTypes, forkasn1.ObjectIdentifier(m))
	}
	b, err := init.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return GSSInitial(OIDSPNEGO, b)
}
