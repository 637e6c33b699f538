package socks5

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	socks5 "github.com/armon/go-socks5"

	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// errLoginRefused ends a handshake whose login the core refused; the core has
// logged why.
var errLoginRefused = errors.New("login refused")

// login runs RFC 1929 through armon/go-socks5's authenticator, which parses the
// message and writes the status, with a credential store that asks the core.
func login(s *tunnel.Session, br *bufio.Reader) error {
	store := &attemptStore{s: s, br: br}
	_, err := socks5.UserPassAuthenticator{Credentials: store}.Authenticate(br, s.Conn().Net())
	if !store.asked {
		// The sub-negotiation itself was malformed (wrong version, short read).
		return fmt.Errorf("auth: %w", err)
	}
	if store.result != auth.ResultOK {
		return fmt.Errorf("%w: %s", errLoginRefused, store.result)
	}
	return err // nil, or the success status could not be written
}

// attemptStore is the CredentialStore for one login: it asks the core, under a
// context that ends at the handshake deadline or when the client hangs up, and
// keeps the result. The password is never kept.
type attemptStore struct {
	s      *tunnel.Session
	br     *bufio.Reader
	asked  bool
	result string
}

func (a *attemptStore) Valid(user, password string) bool {
	a.asked = true
	// A login answered at once (a returning client's, from the cache) needs
	// no deadline and no watch for a hang-up: a goroutine, two deadline moves
	// and a context per session under churn (issue 24).
	if out, ok := a.s.LoginCached(user, password); ok {
		a.result = out.Result
		return a.result == auth.ResultOK
	}
	conn := a.s.Conn()
	deadline := conn.Start().Add(conn.Policy().Config.Timeouts.Handshake)
	ctx, cancel := context.WithDeadline(conn.Context(), deadline)
	defer cancel()
	// Deferred, so that the watch is over before the reader goes back to its
	// pool even if the check panics.
	defer watchHangUp(a.br, conn.Net(), deadline, cancel)()
	a.result = a.s.Login(ctx, user, password).Result
	return a.result == auth.ResultOK
}

// deadliner is the part of net.Conn that watchHangUp needs.
type deadliner interface{ SetReadDeadline(time.Time) error }

// watchHangUp calls hangUp if the client resets the connection (or the read
// deadline passes) while a login is being checked, so that the check is abandoned
// instead of counted. An end of stream is not a hang-up: a client may send its
// login and request and then shut down its side, and still read the answer. It
// peeks, so a byte the client sends early (a request pipelined after the login)
// stays for the request parser; after one, it stops watching. It returns a
// function that stops the watch, waits for it, and puts the read deadline back.
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
