package tunnel

import (
	"context"
	"errors"
	"fmt"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/auth"
)

// Why a login was refused, by auth result; a client sees the same refusal for
// each (its front's "wrong credentials"), the log and the accounting line tell
// them apart.
var (
	errLoginFailed      = errors.New("wrong password or unknown user")
	errLoginThrottled   = errors.New("too many failed logins from this address or of this user")
	errLoginBusy        = errors.New("too many logins waiting for a check")
	errLoginUnavailable = errors.New("the user directory did not answer")
	errLoginAbandoned   = errors.New("client gone or handshake deadline passed before the answer")
)

// Login checks user's password with the connection's authenticator, under ctx
// (which the front ends at the handshake deadline or when the client hangs up).
// The front counts the attempt (Recorder.AuthAttempt with the outcome's result)
// once the client has its answer. On success the session is the user's; otherwise its
// accounting line names the user tried (the logger escapes it, so a name cannot
// forge a line) and says why in its close reason, and the error says it for the
// log. The connection's policy must have an authenticator.
func (s *Session) Login(ctx context.Context, user, password string) (auth.Outcome, error) {
	out := s.conn.pol.Authn.Login(ctx, s.conn.peer.Addr(), user, password)
	if out.Result == auth.ResultOK {
		s.SetUser(out.Identity.User)
		if s.core.shaper != nil {
			// A directory's group chooses the user's buckets (shaping.members wins).
			s.core.shaper.SetUserGroup(out.Identity.User, out.Identity.Group)
		}
		return out, nil
	}
	s.User = user
	s.Fail(metrics.ResultAuthFailed, "auth_"+out.Result)
	return out, fmt.Errorf("login as %q: %w", user, loginError(out))
}

func loginError(out auth.Outcome) error {
	var err error
	switch out.Result {
	case auth.ResultThrottled:
		err = errLoginThrottled
	case auth.ResultBusy:
		err = errLoginBusy
	case auth.ResultUnavailable:
		err = errLoginUnavailable
	case auth.ResultAbandoned:
		err = errLoginAbandoned
	default:
		err = errLoginFailed
	}
	if out.Err != nil {
		return fmt.Errorf("%w: %w", err, out.Err)
	}
	return err
}
