package tunnel

import (
	"context"
	"errors"
	"fmt"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/auth"
)

// LoginTicket checks a Kerberos token (an HTTP Negotiate token, or an RFC 1961
// context token, by kind) with the connection's authenticator, under ctx, and
// counts the attempt by its result ([auth.KerberosResult.Attempt], or
// unavailable and abandoned when the directory could not be asked). On
// success the session is the ticket's user's ([Session.LoggedInWithTicket]).
// Otherwise its accounting line names the user, or the principal, when the
// ticket decrypted far enough to name one (the logger escapes it), its
// close reason says why ("auth_kerberos_clock_skew"), and the log says it
// with the principal and the service; never the token. The front tells its
// client. The connection's policy must have an authenticator.
func (s *Session) LoginTicket(ctx context.Context, token []byte, kind auth.TicketKind) auth.TicketOutcome {
	out := s.conn.pol.Authn.LoginTicket(ctx, s.conn.peer.Addr(), token, kind)
	s.core.rec.AuthAttempt(out.Result)
	t := out.Ticket
	if out.OK() {
		s.LoggedInWithTicket(out.Identity)
		s.log.Debug("kerberos login", "principal", t.Principal, "service", t.Service, "stale", out.Stale)
		return out
	}
	switch {
	case t.Identity.User != "":
		s.user = t.Identity.User
	case t.Principal != "":
		s.user = t.Principal // refused before it became a user name
	}
	s.Refuse(metrics.ResultAuthFailed, "auth_"+out.Result)
	err := out.Err
	switch {
	case out.Result == auth.ResultUnavailable || out.Result == auth.ResultAbandoned:
		err = loginError(out.Outcome)
	case err == nil:
		err = errors.New(string(t.Result))
	}
	s.log.Info("login failed", "method", "kerberos", "reason", out.Result, "principal", t.Principal,
		"service", t.Service, "err", fmt.Errorf("kerberos login: %w", err))
	return out
}

// LoggedInWithTicket is [Session.LoggedIn] for an identity proven with a
// Kerberos ticket (now, or earlier on the same connection, which the front
// remembers): a users file that stops listing the name does not end the
// session.
func (s *Session) LoggedInWithTicket(id auth.Identity) {
	s.LoggedIn(id)
	s.ticket = true
}
