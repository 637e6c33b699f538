package socks5

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// reasonGSSAPIProtection is the close reason of a client whose ticket was
// good but which asked for per-message protection (RFC 1961 levels 1 to 3).
const reasonGSSAPIProtection = "gssapi_protection"

// loginGSSAPI answers the greeting with method 0x01 and runs RFC 1961 with
// the core checking the ticket (tunnel.Session.LoginTicket: the same replay
// cache, directory lookup and metrics as HTTP Negotiate), under a context that
// ends at the handshake deadline or when the client hangs up.
func loginGSSAPI(s *tunnel.Session, br *bufio.Reader) error {
	conn := s.Conn()
	nc := conn.Net()
	if _, err := nc.Write([]byte{socksVersion, MethodGSSAPI}); err != nil {
		return fmt.Errorf("method reply: %w", err)
	}
	deadline := conn.Start().Add(conn.Policy().Config.Timeouts.Handshake)
	asked := false
	accept := func(token []byte) (auth.KerberosLogin, bool) {
		asked = true
		ctx, cancel := context.WithDeadline(conn.Context(), deadline)
		defer cancel()
		defer watchHangUp(br, nc, deadline, cancel)()
		out := s.LoginTicket(ctx, token, auth.GSSAPI)
		l := out.Ticket
		if !out.OK() && l.Err == nil {
			l.Err = out.Err
		}
		return l, out.OK()
	}
	_, err := NegotiateGSSAPI(struct {
		io.Reader
		io.Writer
	}{br, nc}, accept)
	switch {
	case err == nil:
		return nil
	case !asked:
		return fmt.Errorf("auth: %w", err) // the sub-negotiation itself was malformed
	case errors.Is(err, ErrGSSAPIRefused):
		return fmt.Errorf("%w: %w", errLoginRefused, err)
	}
	// A good ticket, then a protection level the proxy does not grant, or a
	// broken protection-level message: the session is refused.
	if errors.Is(err, ErrGSSAPIProtection) {
		s.Refuse(metrics.ResultAuthFailed, reasonGSSAPIProtection)
	}
	s.Log().Info("GSS-API sub-negotiation failed after the login", "err", err)
	return err
}
