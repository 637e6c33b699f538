package socks5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/sockshaper/sockshaper/proxy/auth"
)

// MethodGSSAPI is the RFC 1928 method number of GSS-API authentication (RFC 1961).
const MethodGSSAPI = 0x01

// The RFC 1961 message header: version, then message type.
const (
	gssVersion    = 0x01
	gssAuth       = 0x01 // context establishment tokens
	gssProtection = 0x02 // the protection-level negotiation
	gssAbort      = 0xff // the server refuses: version and this, no length
)

// ProtectionNone is the only protection level the proxy grants: no per-message
// protection after the sub-negotiation, so the request and the relayed bytes go
// in the clear, as after a password login. RFC 1961 names levels 1 (integrity),
// 2 (confidentiality) and 3 (selective); 0 is what curl sends (it forces no
// protection) and what Dante calls "clear". Encapsulating every relayed byte
// would put per-message cryptography on the relay's hot path.
const ProtectionNone = 0x00

// Errors of [NegotiateGSSAPI].
var (
	// ErrGSSAPIRefused: the ticket was refused; the login says why.
	ErrGSSAPIRefused = errors.New("GSS-API: ticket refused")
	// ErrGSSAPIProtection: the client asked for a protection level other than
	// none, which is not supported.
	ErrGSSAPIProtection = errors.New("GSS-API: protection level not supported")
)

// readGSSMessage reads one RFC 1961 message, version 1, of message type want:
// the 4-byte header and a token of at most [auth.MaxKerberosToken] bytes (which the
// two-byte length cannot exceed anyway). An abort message from the client is an
// error.
func readGSSMessage(r io.Reader, want byte) ([]byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:2]); err != nil {
		return nil, fmt.Errorf("GSS-API message: %w", err)
	}
	switch {
	case head[0] != gssVersion:
		return nil, fmt.Errorf("GSS-API message version %d, not 1", head[0])
	case head[1] == gssAbort:
		return nil, errors.New("GSS-API: the client aborted")
	case head[1] != want:
		return nil, fmt.Errorf("GSS-API message type %d, want %d", head[1], want)
	}
	if _, err := io.ReadFull(r, head[2:]); err != nil {
		return nil, fmt.Errorf("GSS-API message length: %w", err)
	}
	n := int(binary.BigEndian.Uint16(head[2:]))
	if n == 0 || n > auth.MaxKerberosToken {
		return nil, fmt.Errorf("GSS-API token of %d bytes", n)
	}
	token := make([]byte, n)
	if _, err := io.ReadFull(r, token); err != nil {
		return nil, fmt.Errorf("GSS-API token: %w", err)
	}
	return token, nil
}

// appendGSSMessage appends an RFC 1961 message of type typ carrying token.
func appendGSSMessage(b []byte, typ byte, token []byte) []byte {
	b = append(b, gssVersion, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(token)))
	return append(b, token...)
}

// Accept checks an RFC 1961 context token and returns the ticket check, and
// whether the client may go on: a good ticket can still be refused (its user
// unknown to the directory, or the directory not answering).
type Accept func(token []byte) (login auth.KerberosLogin, ok bool)

// AcceptWith is the Accept of a bare [auth.TicketVerifier], for a client at
// the given address: the ticket check alone decides.
func AcceptWith(v auth.TicketVerifier, client netip.Addr) Accept {
	return func(token []byte) (auth.KerberosLogin, bool) {
		l := v.AcceptGSS(token, client)
		return l, l.Result == auth.KerberosOK
	}
}

// NegotiateGSSAPI runs the RFC 1961 sub-negotiation on rw, once the client has
// been told the method is [MethodGSSAPI]: the client's context token is checked
// by accept (a Kerberos ticket, no call to the KDC), the mutual-authentication
// token goes back when the client asked for it, then the protection level is
// agreed ([ProtectionNone] only). The protection-level message may be a GSS-API
// Wrap token (RFC 1961, curl by default) or the bare byte (the NEC reference
// implementation, curl --socks5-gssapi-nec); the reply takes the same form.
//
// It returns the login whatever happened (its Result says why a ticket was
// refused) and a nil error when the client may go on with its request, in the
// clear. On error the client has been sent the abort message where the protocol
// has one; the caller closes the connection. The caller sets the deadline.
func NegotiateGSSAPI(rw io.ReadWriter, accept Accept) (auth.KerberosLogin, error) {
	token, err := readGSSMessage(rw, gssAuth)
	if err != nil {
		return auth.KerberosLogin{Result: auth.KerberosMalformed, Err: err}, err
	}
	login, ok := accept(token)
	if !ok || login.Result != auth.KerberosOK {
		rw.Write([]byte{gssVersion, gssAbort})
		if login.Result == auth.KerberosOK { // a good ticket, but its user cannot log in now
			return login, fmt.Errorf("%w: the ticket's user: %w", ErrGSSAPIRefused, login.Err)
		}
		return login, fmt.Errorf("%w: %s: %w", ErrGSSAPIRefused, login.Result, login.Err)
	}
	if login.Reply != nil {
		if _, err := rw.Write(appendGSSMessage(nil, gssAuth, login.Reply)); err != nil {
			return login, fmt.Errorf("GSS-API reply: %w", err)
		}
	}
	return login, negotiateProtection(rw, login.Context)
}

// negotiateProtection reads the client's protection level, refuses any but
// none, and answers none in the form the client used.
func negotiateProtection(rw io.ReadWriter, ctx auth.SecurityContext) error {
	token, err := readGSSMessage(rw, gssProtection)
	if err != nil {
		return err
	}
	nec := len(token) == 1 // a bare byte: NEC style; anything longer is a Wrap token
	level := token
	if !nec {
		if level, err = ctx.Unwrap(token); err != nil {
			rw.Write([]byte{gssVersion, gssAbort})
			return fmt.Errorf("GSS-API protection level: %w", err)
		}
	}
	if len(level) != 1 || level[0] != ProtectionNone {
		rw.Write([]byte{gssVersion, gssAbort})
		return fmt.Errorf("%w: %x (only %d, none)", ErrGSSAPIProtection, level, ProtectionNone)
	}
	reply := []byte{ProtectionNone}
	if !nec {
		if reply, err = ctx.Wrap(reply); err != nil {
			return fmt.Errorf("GSS-API protection level: %w", err)
		}
	}
	if _, err := rw.Write(appendGSSMessage(nil, gssProtection, reply)); err != nil {
		return fmt.Errorf("GSS-API protection level reply: %w", err)
	}
	return nil
}
