package socks5

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/sockshaper/sockshaper/proxy/auth"
)

// FuzzReadGSSMessage: the RFC 1961 message reader takes exactly the header and
// the token its length names, of the type asked, never more than the input.
func FuzzReadGSSMessage(f *testing.F) {
	f.Add(appendGSSMessage(nil, gssAuth, []byte{0x60, 0x01, 0x00}))
	f.Add([]byte{1, 0xff})
	f.Add([]byte{1, 1, 0, 0})
	f.Add([]byte{1, 1, 0xff, 0xff, 1})
	f.Add([]byte{5, 1, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		token, err := readGSSMessage(r, gssAuth)
		if err != nil {
			if token != nil {
				t.Fatal("token with an error")
			}
			return
		}
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if b[0] != gssVersion || b[1] != gssAuth || n == 0 || len(token) != n || !bytes.Equal(token, b[4:4+n]) ||
			r.Len() != len(b)-4-n {
			t.Fatalf("read %x from %x", token, b)
		}
	})
}

// stubVerifier accepts the context token "good" and refuses the rest; its
// context wraps by prefixing "W" and unwraps only tokens so prefixed.
type stubVerifier struct{}

type stubContext struct{}

func (stubContext) Unwrap(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 'W' {
		return nil, errors.New("bad wrap")
	}
	return b[1:], nil
}

func (stubContext) Wrap(b []byte) ([]byte, error) { return append([]byte{'W'}, b...), nil }

func (stubVerifier) AcceptSPNEGO([]byte, netip.Addr) auth.KerberosLogin { panic("not used") }

func (stubVerifier) AcceptGSS(token []byte, _ netip.Addr) auth.KerberosLogin {
	if string(token) != "good" {
		return auth.KerberosLogin{Result: auth.KerberosMalformed, Err: errors.New("bad")}
	}
	return auth.KerberosLogin{Result: auth.KerberosOK, Identity: auth.Identity{User: "u"}, Reply: []byte("rep"), Context: stubContext{}}
}

// FuzzNegotiateGSSAPI: whatever a client sends, the sub-negotiation ends (the
// input runs out) without a panic; it lets the client on only after a good
// context token and protection level none, and then has written the AP-REP and
// the level none in the client's form; a refusal writes nothing but the abort
// message after the replies already due.
func FuzzNegotiateGSSAPI(f *testing.F) {
	good := appendGSSMessage(nil, gssAuth, []byte("good"))
	f.Add(appendGSSMessage(good, gssProtection, []byte("W\x00")))
	f.Add(appendGSSMessage(good, gssProtection, []byte{0}))
	f.Add(appendGSSMessage(good, gssProtection, []byte{2}))
	f.Add(appendGSSMessage(good, gssProtection, []byte("X\x00")))
	f.Add(appendGSSMessage(nil, gssAuth, []byte("bad")))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		l, err := NegotiateGSSAPI(struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(in), &out}, AcceptWith(stubVerifier{}, netip.Addr{}))
		rep := appendGSSMessage(nil, gssAuth, []byte("rep"))
		if err == nil {
			last := out.Bytes()[len(rep):]
			nec := appendGSSMessage(nil, gssProtection, []byte{0})
			wrapped := appendGSSMessage(nil, gssProtection, []byte("W\x00"))
			if l.Result != auth.KerberosOK || !bytes.HasPrefix(out.Bytes(), rep) ||
				!bytes.Equal(last, nec) && !bytes.Equal(last, wrapped) {
				t.Fatalf("let on with %+v, wrote %x", l, out.Bytes())
			}
			return
		}
		rest := bytes.TrimPrefix(out.Bytes(), rep)
		if len(rest) != 0 && !bytes.Equal(rest, []byte{gssVersion, gssAbort}) {
			t.Fatalf("refused (%v) but wrote %x", err, out.Bytes())
		}
	})
}
