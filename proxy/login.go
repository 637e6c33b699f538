package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	socks5 "github.com/armon/go-socks5"

	"github.com/sockshaper/sockshaper/proxy/auth"
)

// Why a login was refused, by auth result; the client sees the same RFC 1929
// failure for each.
var (
	errLoginFailed      = errors.New("wrong password or unknown user")
	errLoginThrottled   = errors.New("too many failed logins from this address or of this user")
	errLoginBusy        = errors.New("too many logins waiting for a check")
	errLoginUnavailable = errors.New("the user directory did not answer")
	errLoginAbandoned   = errors.New("client gone or handshake deadline passed before the answer")
)

// login runs RFC 1929 through armon/go-socks5's authenticator, which parses the
// message and writes the status, with a credential store that asks the policy's
// Authenticator.
func (sess *session) login(br *bufio.Reader) error {
	store := &attemptStore{sess: sess, br: br}
	_, err := socks5.UserPassAuthenticator{Credentials: store}.Authenticate(br, sess.conn)
	if !store.asked {
		// The sub-negotiation itself was malformed (wrong version, short read).
		return fmt.Errorf("auth: %w", err)
	}
	out := store.outcome
	sess.srv.rec.AuthAttempt(out.Result)
	// The accounting line names the user tried, whatever the outcome; the
	// logger escapes it, so a name cannot forge a line.
	sess.user = store.user
	if out.Result == auth.ResultOK {
		sess.user = out.Identity.User
		sess.srv.shaper.SetUserGroup(out.Identity.User, out.Identity.Group)
		sess.log = sess.log.With("user", sess.user)
		return err // nil, or the success status could not be written
	}
	sess.result = resultAuthFailed
	sess.reason = "auth_" + out.Result
	return fmt.Errorf("login as %q: %w", store.user, loginError(out))
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

// attemptStore is the CredentialStore for one login: it asks the Authenticator,
// under a context that ends at the handshake deadline or when the client hangs up,
// and keeps the outcome for login to count. The password is never kept.
type attemptStore struct {
	sess    *session
	br      *bufio.Reader
	asked   bool
	user    string
	outcome auth.Outcome
}

func (a *attemptStore) Valid(user, password string) bool {
	a.asked, a.user = true, user
	sess := a.sess
	deadline := sess.start.Add(sess.pol.cfg.Timeouts.Handshake)
	ctx, cancel := context.WithDeadline(sess.ctx, deadline)
	defer cancel()
	stop := watchHangUp(a.br, sess.conn, deadline, cancel)
	a.outcome = sess.pol.authn.Login(ctx, sess.client.Addr(), user, password)
	stop()
	return a.outcome.Result == auth.ResultOK
}

// deadliner is the part of net.Conn that watchHangUp needs.
type deadliner interface{ SetReadDeadline(time.Time) error }

// watchHangUp calls hangUp if the client resets the connection (or the read
// deadline passes) while a login is being checked, so that the check is abandoned
// instead of counted. An end of stream is not a hang-up: a client may send its
// login and request and then shut down its side, and still read the answer. It
// peeks, so a byte the client sends early (a request
// pipelined after the login) stays for the request parser; after one, it stops
// watching. It returns a function that stops the watch, waits for it, and puts the
// read deadline back.
func watchHangUp(br *bufio.Reader, conn deadliner, deadline time.Time, hangUp func()) (stop func()) {
	if br.Buffered() > 0 {
		return func() {} // the client already sent more: it is there
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := br.Peek(1); err != nil && !errors.Is(err, io.EOF) {
			hangUp()
		}
	}()
	return func() {
		conn.SetReadDeadline(time.Now()) // wakes the peek
		<-done
		conn.SetReadDeadline(deadline)
	}
}
