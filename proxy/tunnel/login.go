package tunnel

import (
	"context"
	"errors"
	"fmt"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/shaping"
	"github.com/sockshaper/sockshaper/usage"
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
// (which the front ends at the handshake deadline or when the client hangs up),
// and counts the attempt by its result. On success the session is the user's,
// for everything that follows: admission, buckets, accounting. Otherwise its
// accounting line names the user tried (the logger escapes it, so a name cannot
// forge a line) and says why in its close reason, and the log says it. The front
// tells its client (a wrong login and a throttled one look the same to it). The
// connection's policy must have an authenticator.
func (s *Session) Login(ctx context.Context, user, password string) auth.Outcome {
	return s.loginOutcome(s.conn.pol.Authn.Login(ctx, s.conn.peer.Addr(), user, password), user)
}

// LoginCached is [Session.Login] for a login whose answer needs no wait (see
// [auth.Authenticator.Cached]): a front asks it first and, when ok is false,
// calls Login under the context that bounds the check.
func (s *Session) LoginCached(user, password string) (out auth.Outcome, ok bool) {
	if out, ok = s.conn.pol.Authn.Cached(s.conn.peer.Addr(), user, password); !ok {
		return out, false
	}
	return s.loginOutcome(out, user), true
}

// loginOutcome counts a login's answer and makes the session the user's, or
// records and logs its refusal.
func (s *Session) loginOutcome(out auth.Outcome, user string) auth.Outcome {
	s.core.rec.AuthAttempt(out.Result)
	if out.Result == auth.ResultOK {
		s.LoggedIn(out.Identity)
		return out
	}
	s.user = user
	s.Refuse(metrics.ResultAuthFailed, "auth_"+out.Result)
	s.log.Info("login failed", "err", fmt.Errorf("login as %q: %w", user, loginError(out)))
	return out
}

// Challenged records that the request came without credentials and its front
// asks for them (HTTP's 407): what every browser's first request gets before
// it sends them, so it is auth_required, not a failed login. It is no login
// attempt and the throttle never hears of it; the log line is Debug, not the
// login failure's Info.
func (s *Session) Challenged() {
	s.Refuse(metrics.ResultAuthRequired, metrics.ResultAuthRequired)
	s.log.Debug("credentials required")
}

// LoggedIn makes the session the verified identity's: a login checked by
// [Session.Login], or one the front verified for the whole connection and
// reuses (a later request on it).
func (s *Session) LoggedIn(id auth.Identity) {
	s.setUser(id.User)
	s.loginGroup = id.Group
	// The accounting line names the group the user's buckets follow
	// (shaping.members wins over the login's, default_group without one).
	s.record.group = s.core.shaper.GroupFor(s.Who())
}

// Who is the session's user as their login established them, for their
// buckets: a directory's group chooses the user's own limit (shaping.members
// wins over it).
func (s *Session) Who() shaping.Who { return shaping.Who{User: s.user, Group: s.loginGroup} }

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

// Usage is the usage store the core counts users' bytes in, for a user's own
// page; nil when the core counts none.
func (c *Core) Usage() *usage.Store { return c.usage }
