package auth

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	forkasn1 "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// gssChecksumType is the authenticator checksum of the GSS-API Kerberos
// mechanism (RFC 4121 4.1.1), which carries the context flags.
const gssChecksumType = 0x8003

// gssMutualFlag is GSS_C_MUTUAL_FLAG in that checksum's flags.
const gssMutualFlag = 2

// accepted is a checked AP-REQ: the login, and what a reply or a security
// context is made from.
type accepted struct {
	login      KerberosLogin
	sessionKey types.EncryptionKey // the ticket's, which encrypts the AP-REP
	auth       types.Authenticator
	mutual     bool
}

// acceptAPReq checks an AP-REQ (RFC 4120 3.2.3) step by step; each refusal has
// its own result. The replay cache is consulted last, so that only
// authenticators that passed every other check take room in it.
func (k *Kerberos) acceptAPReq(der []byte, client netip.Addr) (a accepted) {
	fail := func(r KerberosResult, err error) accepted {
		a.login.Result, a.login.Err = r, err
		return a
	}
	var req messages.APReq
	if err := unmarshalAPReq(&req, der); err != nil {
		return fail(KerberosMalformed, err)
	}
	t := &req.Ticket
	a.login.Service = t.SName.PrincipalNameString() + "@" + t.Realm
	if !k.serves(t.SName) {
		return fail(KerberosWrongService, fmt.Errorf("ticket for %s", a.login.Service))
	}
	for _, et := range []int32{t.EncPart.EType, req.EncryptedAuthenticator.EType} {
		if !slices.Contains(k.enctypes, et) {
			return fail(KerberosEnctype, fmt.Errorf("ticket or authenticator in %s", EnctypeName(et)))
		}
	}
	if r, err := k.decryptTicket(t); r != KerberosOK {
		return fail(r, err)
	}
	enc := &t.DecryptedEncPart
	a.sessionKey = enc.Key
	if r, err := k.checkTicket(enc, client); r != KerberosOK {
		return fail(r, err)
	}
	if r, err := decryptAuthenticator(&req, enc); r != KerberosOK {
		return fail(r, err)
	}
	a.auth = req.Authenticator
	a.login.Principal = enc.CName.PrincipalNameString() + "@" + enc.CRealm
	if r, err := k.checkAuthenticator(&a.auth); r != KerberosOK {
		return fail(r, err)
	}
	if !slices.Contains(k.realms, enc.CRealm) {
		return fail(KerberosRealm, fmt.Errorf("client %s of realm %s", a.login.Principal, enc.CRealm))
	}
	user, err := k.userName(enc.CName, enc.CRealm)
	if err != nil {
		return fail(KerberosBadName, err)
	}
	gssFlags, err := gssChecksumFlags(a.auth.Cksum)
	if err != nil {
		return fail(KerberosMalformed, err)
	}
	a.mutual = flagSet(req.APOptions, flags.APOptionMutualRequired) || gssFlags&gssMutualFlag != 0
	ctime := a.auth.CTime.Add(time.Duration(a.auth.Cusec) * time.Microsecond)
	if r := k.replay.check(req.EncryptedAuthenticator.Cipher, ctime.Add(k.skew), k.now()); r != KerberosOK {
		return fail(r, errors.New("authenticator seen before, or no room to remember it"))
	}
	a.login.Result, a.login.Identity, a.login.Expires = KerberosOK, Identity{User: user}, enc.EndTime
	return a
}

// unmarshalAPReq decodes an AP-REQ. gofork's asn1 is not fuzz-hardened; a panic
// in it is a bad token, not a dead proxy.
func unmarshalAPReq(req *messages.APReq, der []byte) (err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("malformed AP-REQ")
		}
	}()
	if err := req.Unmarshal(der); err != nil {
		return err
	}
	if len(req.Ticket.SName.NameString) == 0 {
		return errors.New("ticket without a service name")
	}
	return nil
}

// serves reports whether sname is one of the service names. Names compare
// without case, as Active Directory's do; only the right key decrypts a ticket
// anyway.
func (k *Kerberos) serves(sname types.PrincipalName) bool {
	name := sname.PrincipalNameString()
	return slices.ContainsFunc(k.services, func(s string) bool { return strings.EqualFold(s, name) })
}

// decryptTicket decrypts the ticket with the first key of the keytab that can:
// one of the ticket's key version first, then the others.
func (k *Kerberos) decryptTicket(t *messages.Ticket) (KerberosResult, error) {
	keys, exact := k.keytab.cur.Load().candidates(t.SName.PrincipalNameString(), t.Realm, t.EncPart.EType, uint32(t.EncPart.KVNO))
	for _, key := range keys {
		if err := decryptTicketWith(t, key); err == nil {
			return KerberosOK, nil
		}
	}
	if !exact {
		return KerberosNoKey, fmt.Errorf("the keytab has no %s key of version %d for %s@%s",
			EnctypeName(t.EncPart.EType), t.EncPart.KVNO, t.SName.PrincipalNameString(), t.Realm)
	}
	return KerberosIntegrity, errors.New("the ticket does not decrypt with the keytab's key")
}

func decryptTicketWith(t *messages.Ticket, key types.EncryptionKey) (err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("malformed ticket")
		}
	}()
	return t.Decrypt(key)
}

// checkTicket checks the decrypted ticket's times, flags, session key type and
// addresses.
func (k *Kerberos) checkTicket(enc *messages.EncTicketPart, client netip.Addr) (KerberosResult, error) {
	now := k.now()
	start := enc.StartTime
	if start.IsZero() {
		start = enc.AuthTime
	}
	switch {
	case flagSet(enc.Flags, flags.Invalid):
		return KerberosNotYetValid, errors.New("postdated ticket not yet validated")
	case start.Sub(now) > k.skew:
		return KerberosNotYetValid, fmt.Errorf("ticket valid from %s", start.UTC().Format(time.RFC3339))
	case now.Sub(enc.EndTime) > k.skew:
		return KerberosExpired, fmt.Errorf("ticket expired at %s", enc.EndTime.UTC().Format(time.RFC3339))
	case !slices.Contains(k.enctypes, enc.Key.KeyType):
		return KerberosEnctype, fmt.Errorf("session key in %s", EnctypeName(enc.Key.KeyType))
	}
	if len(enc.CAddr) > 0 && !types.HostAddressesContains(enc.CAddr, types.HostAddressFromNetIP(net.IP(client.Unmap().AsSlice()))) {
		return KerberosAddress, fmt.Errorf("ticket bound to addresses other than %s", client)
	}
	return KerberosOK, nil
}

// decryptAuthenticator decrypts the authenticator with the ticket's session key
// and checks that it names the ticket's client.
func decryptAuthenticator(req *messages.APReq, enc *messages.EncTicketPart) (r KerberosResult, err error) {
	defer func() {
		if recover() != nil {
			r, err = KerberosIntegrity, errors.New("malformed authenticator")
		}
	}()
	b, err := crypto.DecryptEncPart(req.EncryptedAuthenticator, enc.Key, keyusage.AP_REQ_AUTHENTICATOR)
	if err != nil {
		return KerberosIntegrity, errors.New("the authenticator does not decrypt with the ticket's session key")
	}
	if err := req.Authenticator.Unmarshal(b); err != nil {
		return KerberosIntegrity, fmt.Errorf("authenticator: %w", err)
	}
	if !req.Authenticator.CName.Equal(enc.CName) || req.Authenticator.CRealm != enc.CRealm {
		return KerberosIntegrity, errors.New("the authenticator names another client than the ticket")
	}
	return KerberosOK, nil
}

// checkAuthenticator checks the authenticator's time against our clock and its
// subkey's type, which the per-message tokens use.
func (k *Kerberos) checkAuthenticator(a *types.Authenticator) (KerberosResult, error) {
	ctime := a.CTime.Add(time.Duration(a.Cusec) * time.Microsecond)
	if d := k.now().Sub(ctime).Abs(); d > k.skew {
		return KerberosClockSkew, fmt.Errorf("client clock %s off ours (at most %s)", d.Round(time.Second), k.skew)
	}
	if a.SubKey.KeyType != 0 && !slices.Contains(k.enctypes, a.SubKey.KeyType) {
		return KerberosEnctype, fmt.Errorf("subkey in %s", EnctypeName(a.SubKey.KeyType))
	}
	return KerberosOK, nil
}

// gssChecksumFlags returns the context flags of the authenticator's GSS-API
// checksum (RFC 4121 4.1.1): 4 bytes of length (16), 16 of channel binding
// hash, then the flags, little-endian.
func gssChecksumFlags(c types.Checksum) (uint32, error) {
	if c.CksumType != gssChecksumType || len(c.Checksum) < 24 {
		return 0, fmt.Errorf("authenticator checksum of type %d and %d bytes, not a GSS-API one", c.CksumType, len(c.Checksum))
	}
	return binary.LittleEndian.Uint32(c.Checksum[20:24]), nil
}

// userName makes the user name of a principal, refusing names that could be
// mistaken for another's or that do not fit a user name.
func (k *Kerberos) userName(cname types.PrincipalName, realm string) (string, error) {
	for _, c := range cname.NameString {
		if c == "" || strings.ContainsAny(c, "/@") {
			return "", fmt.Errorf("principal component %q", c)
		}
	}
	name := cname.PrincipalNameString()
	if k.fullNames {
		name += "@" + realm
	}
	if name == "" || len(name) > 255 || !utf8.ValidString(name) || hasControl(name) {
		return "", fmt.Errorf("principal %q is not a user name", name)
	}
	return name, nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}

// flagSet reports whether bit i of a Kerberos flags bit string is set; a string
// too short to hold it has it clear.
func flagSet(bs forkasn1.BitString, i int) bool {
	return i/8 < len(bs.Bytes) && bs.Bytes[i/8]&(0x80>>(i%8)) != 0
}

// newSeq returns an acceptor's first sequence number: random, below 2^30 as MIT
// makes them, never 0 (which the AP-REP would leave out).
func newSeq() int64 {
	var b [4]byte
	rand.Read(b[:])
	return int64(binary.BigEndian.Uint32(b[:])&0x3fffffff) | 1
}
