package auth

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"

	forkasn1 "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/types"
)

// MaxKerberosToken bounds a Kerberos token: Windows' MaxTokenSize is 48,000
// bytes by default, enough for a ticket with a large group list (PAC); 64 KiB
// leaves room, and RFC 1961's two-byte length cannot say more anyway.
const MaxKerberosToken = 64 << 10

// The mechanism OIDs.
var (
	oidKRB5     = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2}
	oidMSKRB5   = asn1.ObjectIdentifier{1, 2, 840, 48018, 1, 2, 2} // what Windows offers first
	oidSPNEGO   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 2}
	tokAPReq    = [2]byte{0x01, 0x00} // RFC 4121 4.1: the token IDs of the context tokens
	tokAPRep    = [2]byte{0x02, 0x00}
	errTrailing = errors.New("trailing bytes")
)

// derElement splits the DER element at the start of b into its tag byte and
// content, and returns what follows. Lengths are definite, at most 3 bytes long.
func derElement(b []byte) (tag byte, content, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errors.New("truncated DER element")
	}
	tag, n, b := b[0], int(b[1]), b[2:]
	if n&0x80 != 0 {
		size := n & 0x7f
		if size == 0 || size > 3 || len(b) < size {
			return 0, nil, nil, errors.New("bad DER length")
		}
		n = 0
		for _, c := range b[:size] {
			n = n<<8 | int(c)
		}
		b = b[size:]
	}
	if n > len(b) {
		return 0, nil, nil, fmt.Errorf("DER element of %d bytes in %d", n, len(b))
	}
	return tag, b[:n], b[n:], nil
}

// decodeInitialToken splits an RFC 2743 3.1 InitialContextToken,
// [APPLICATION 0] { thisMech OID, innerToken }, into the mechanism and the inner
// token.
func decodeInitialToken(b []byte) (asn1.ObjectIdentifier, []byte, error) {
	if len(b) > 0 && b[0] != 0x60 {
		return nil, nil, fmt.Errorf("not a GSS-API initial token (tag %#x)", b[0])
	}
	_, body, rest, err := derElement(b)
	switch {
	case err != nil:
		return nil, nil, err
	case len(rest) != 0:
		return nil, nil, errTrailing
	}
	tag, _, inner, err := derElement(body)
	if err != nil || tag != 0x06 {
		return nil, nil, errors.New("GSS-API token without a mechanism OID")
	}
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(body[:len(body)-len(inner)], &oid); err != nil {
		return nil, nil, fmt.Errorf("mechanism OID: %w", err)
	}
	return oid, inner, nil
}

// decodeKRB5Token returns the AP-REQ of a Kerberos GSS-API initial context token
// (RFC 4121 4.1: the krb5 OID, token ID 01 00, the AP-REQ).
func decodeKRB5Token(b []byte) ([]byte, error) {
	oid, inner, err := decodeInitialToken(b)
	if err != nil {
		return nil, err
	}
	if !oid.Equal(oidKRB5) && !oid.Equal(oidMSKRB5) {
		return nil, fmt.Errorf("mechanism %v is not Kerberos", oid)
	}
	if len(inner) < 2 || [2]byte(inner[:2]) != tokAPReq {
		return nil, errors.New("Kerberos token is not an AP-REQ")
	}
	return inner[2:], nil
}

// decodeNegotiate returns the Kerberos token of a Negotiate token, and the
// mechanism the reply must name: an SPNEGO NegTokenInit whose first mechanism is
// Kerberos (RFC 4178: its mechToken is for the first), or a bare Kerberos token.
// It returns KerberosMalformed or KerberosMechanism when it cannot.
func decodeNegotiate(b []byte) (krb5 []byte, mech asn1.ObjectIdentifier, res KerberosResult, err error) {
	if len(b) > 0 && b[0] == 0xa1 {
		return nil, nil, KerberosMechanism, errors.New("SPNEGO NegTokenResp: a continuation, but no exchange is under way")
	}
	if bytes.HasPrefix(b, []byte("NTLMSSP\x00")) {
		// Windows sends raw NTLM under "Negotiate" when it has no ticket
		// for the proxy (no SPN, or the KDC out of reach).
		return nil, nil, KerberosMechanism, errors.New("NTLM, not Kerberos: the client has no ticket for the proxy")
	}
	oid, inner, err := decodeInitialToken(b)
	if err != nil {
		return nil, nil, KerberosMalformed, err
	}
	if oid.Equal(oidKRB5) || oid.Equal(oidMSKRB5) {
		return b, oidKRB5, "", nil
	}
	if !oid.Equal(oidSPNEGO) {
		return nil, nil, KerberosMechanism, fmt.Errorf("mechanism %v is neither SPNEGO nor Kerberos", oid)
	}
	init, err := unmarshalNegTokenInit(inner)
	if err != nil {
		return nil, nil, KerberosMalformed, err
	}
	if len(init.MechTypes) == 0 {
		return nil, nil, KerberosMalformed, errors.New("SPNEGO NegTokenInit without mechanisms")
	}
	first := asn1.ObjectIdentifier(init.MechTypes[0])
	if !first.Equal(oidKRB5) && !first.Equal(oidMSKRB5) {
		return nil, nil, KerberosMechanism, fmt.Errorf("SPNEGO offers %v first, not Kerberos (NTLM without a ticket?)", first)
	}
	if len(init.MechToken) == 0 {
		return nil, nil, KerberosMechanism, errors.New("SPNEGO NegTokenInit without a Kerberos token")
	}
	return init.MechToken, slices.Clone(first), "", nil
}

// negTokenInit is RFC 4178 4.2.1's NegTokenInit; negTokenResp its NegTokenResp
// (4.2.2). Written here rather than taken from gokrb5's spnego package, which
// would link its whole client, KDC admin and HTTP service code into the proxy.
type negTokenInit struct {
	MechTypes   []forkasn1.ObjectIdentifier `asn1:"explicit,tag:0"`
	ReqFlags    forkasn1.BitString          `asn1:"explicit,optional,tag:1"`
	MechToken   []byte                      `asn1:"explicit,optional,tag:2"`
	MechListMIC []byte                      `asn1:"explicit,optional,tag:3"`
}

type negTokenResp struct {
	NegState      forkasn1.Enumerated       `asn1:"explicit,tag:0"`
	SupportedMech forkasn1.ObjectIdentifier `asn1:"explicit,optional,tag:1"`
	ResponseToken []byte                    `asn1:"explicit,optional,omitempty,tag:2"`
}

// negStateAcceptCompleted is RFC 4178's accept-completed.
const negStateAcceptCompleted = 0

// unmarshalNegTokenInit decodes a NegotiationToken that must be a NegTokenInit
// ([0] of the CHOICE).
func unmarshalNegTokenInit(b []byte) (init negTokenInit, err error) {
	defer func() {
		if recover() != nil { // gofork's asn1 is not fuzz-hardened; a panic is a bad token
			err = errors.New("malformed SPNEGO token")
		}
	}()
	tag, content, rest, err := derElement(b)
	switch {
	case err != nil:
		return init, err
	case tag != 0xa0:
		return init, fmt.Errorf("SPNEGO token is not a NegTokenInit (tag %#x)", tag)
	case len(rest) != 0:
		return init, errTrailing
	}
	if _, err := forkasn1.Unmarshal(content, &init); err != nil {
		return init, fmt.Errorf("SPNEGO NegTokenInit: %w", err)
	}
	return init, nil
}

// encAPRepPart is RFC 4120 5.5.2's EncAPRepPart without the subkey: the context
// keeps the initiator's subkey (RFC 4121 2).
type encAPRepPart struct {
	CTime          time.Time `asn1:"generalized,explicit,tag:0"`
	Cusec          int       `asn1:"explicit,tag:1"`
	SequenceNumber int64     `asn1:"explicit,tag:3"`
}

type apRep struct {
	PVNO    int                 `asn1:"explicit,tag:0"`
	MsgType int                 `asn1:"explicit,tag:1"`
	EncPart types.EncryptedData `asn1:"explicit,tag:2"`
}

// apRepToken returns the GSS-API token of the AP-REP that answers an
// authenticator of ctime and cusec: the client's proof that the service holds the
// key. seq is the acceptor's first sequence number.
func apRepToken(sessionKey types.EncryptionKey, ctime time.Time, cusec int, seq int64) ([]byte, error) {
	part, err := forkasn1.Marshal(encAPRepPart{CTime: ctime.UTC(), Cusec: cusec, SequenceNumber: seq})
	if err != nil {
		return nil, err
	}
	part = asn1tools.AddASNAppTag(part, asnAppTag.EncAPRepPart)
	ed, err := crypto.GetEncryptedData(part, sessionKey, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		return nil, err
	}
	rep, err := forkasn1.Marshal(apRep{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: ed})
	if err != nil {
		return nil, err
	}
	oid, _ := asn1.Marshal(oidKRB5)
	inner := slices.Concat(oid, tokAPRep[:], asn1tools.AddASNAppTag(rep, asnAppTag.APREP))
	return asn1tools.AddASNAppTag(inner, 0), nil
}

// negTokenRespToken wraps a Kerberos reply token in an SPNEGO NegTokenResp that
// completes the exchange, naming mech as the client's offer named it.
func negTokenRespToken(mech asn1.ObjectIdentifier, token []byte) ([]byte, error) {
	b, err := forkasn1.Marshal(negTokenResp{NegState: negStateAcceptCompleted,
		SupportedMech: forkasn1.ObjectIdentifier(mech), ResponseToken: token})
	if err != nil {
		return nil, err
	}
	return forkasn1.Marshal(forkasn1.RawValue{Class: forkasn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: b})
}
