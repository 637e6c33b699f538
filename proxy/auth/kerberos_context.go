package auth

import (
	"errors"
	"fmt"
	"slices"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The flags of an RFC 4121 Wrap token.
const (
	wrapSentByAcceptor = 0x01
	wrapSealed         = 0x02
	wrapAcceptorSubkey = 0x04
)

// gssContext is an established context's per-message state: the key (the
// initiator's subkey, as no acceptor subkey is sent) and each direction's next
// sequence number.
type gssContext struct {
	key              types.EncryptionKey
	sendSeq, recvSeq uint64
}

// cfxKey reports whether key's type takes RFC 4121 per-message tokens: the
// older types (RC4, DES3) use RFC 1964's, which this context does not speak.
func cfxKey(key types.EncryptionKey) error {
	switch key.KeyType {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96,
		etypeID.AES128_CTS_HMAC_SHA256_128, etypeID.AES256_CTS_HMAC_SHA384_192:
		return nil
	}
	return fmt.Errorf("per-message tokens for %s keys (RFC 1964) are not supported", EnctypeName(key.KeyType))
}

// Unwrap implements [SecurityContext].
func (c *gssContext) Unwrap(token []byte) ([]byte, error) {
	if err := cfxKey(c.key); err != nil {
		return nil, err
	}
	if len(token) < gssapi.HdrLen || token[0] != 0x05 || token[1] != 0x04 {
		return nil, errors.New("not an RFC 4121 Wrap token")
	}
	switch f := token[2]; {
	case f&wrapSentByAcceptor != 0:
		return nil, errors.New("Wrap token sent by an acceptor")
	case f&wrapSealed != 0:
		return nil, errors.New("Wrap token with confidentiality, which is not supported")
	case f&wrapAcceptorSubkey != 0:
		return nil, errors.New("Wrap token under an acceptor subkey, which was never sent")
	}
	b := unrotate(token)
	var wt gssapi.WrapToken
	if err := wt.Unmarshal(b, false); err != nil {
		return nil, fmt.Errorf("Wrap token: %w", err)
	}
	if et, _ := crypto.GetEtype(c.key.KeyType); et == nil || int(wt.EC) != et.GetHMACBitLength()/8 {
		return nil, fmt.Errorf("Wrap token with a checksum of %d bytes", wt.EC)
	}
	if ok, err := wt.Verify(c.key, keyusage.GSSAPI_INITIATOR_SEAL); !ok {
		return nil, fmt.Errorf("Wrap token: %w", err)
	}
	if wt.SndSeqNum != c.recvSeq {
		return nil, fmt.Errorf("Wrap token out of sequence: %d, want %d", wt.SndSeqNum, c.recvSeq)
	}
	c.recvSeq++
	return slices.Clone(wt.Payload), nil
}

// unrotate returns a copy of an RFC 4121 token with its data (what follows the
// 16-byte header) rotated back left by the token's RRC (4.2.5): MIT sends RRC 0,
// Windows' SSPI does not.
func unrotate(token []byte) []byte {
	b := slices.Clone(token)
	data := b[gssapi.HdrLen:]
	rrc := int(b[6])<<8 | int(b[7])
	if len(data) > 0 {
		n := rrc % len(data)
		slices.Reverse(data[:n])
		slices.Reverse(data[n:])
		slices.Reverse(data)
	}
	b[6], b[7] = 0, 0
	return b
}

// Wrap implements [SecurityContext].
func (c *gssContext) Wrap(payload []byte) ([]byte, error) {
	if err := cfxKey(c.key); err != nil {
		return nil, err
	}
	et, err := crypto.GetEtype(c.key.KeyType)
	if err != nil {
		return nil, err
	}
	wt := gssapi.WrapToken{Flags: wrapSentByAcceptor, EC: uint16(et.GetHMACBitLength() / 8),
		SndSeqNum: c.sendSeq, Payload: slices.Clone(payload)}
	if err := wt.SetCheckSum(c.key, keyusage.GSSAPI_ACCEPTOR_SEAL); err != nil {
		return nil, err
	}
	c.sendSeq++
	return wt.Marshal()
}
