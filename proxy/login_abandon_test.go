package proxy

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sockshaper/sockshaper/proxy/auth"
)

// gatedVerifier holds every check until open is closed, and counts them.
type gatedVerifier struct {
	auth.Verifier
	open  chan struct{}
	calls atomic.Int64
}

func (g *gatedVerifier) Verify(ctx context.Context, user, password string) (auth.Identity, auth.Verdict, error) {
	g.calls.Add(1)
	<-g.open
	return g.Verifier.Verify(ctx, user, password)
}

// gatedHarness is a proxy whose password checks wait for the test to open them.
func gatedHarness(t *testing.T, extra string) (*harness, *gatedVerifier) {
	cfg := loadTestConfig(t, mergeYAML(t, testConfig, extra))
	v := &gatedVerifier{Verifier: loadUsers(t, cfg), open: make(chan struct{})}
	h := startHarness(t, cfg, v)
	t.Cleanup(func() {
		select {
		case <-v.open:
		default:
			close(v.open)
		}
	})
	return h, v
}

// sendLoginAndHangUp sends a greeting and a login and closes the connection
// without waiting for the answer.
func sendLoginAndHangUp(t *testing.T, proxyAddr, user, password string) {
	c := dialFrom(t, proxyAddr, "")
	defer c.Close()
	if _, err := c.Write(cat(greetUserPass, loginMsg(user, password))); err != nil {
		t.Fatal(err)
	}
}

func waitChecksDone(t *testing.T, h *harness) {
	waitFor(t, "the checks to finish", func() bool { q, r := h.srv.gate.Pending(); return q+r == 0 })
}

// TestAbandonedLoginIsNotAFailure: right passwords whose clients hang up, or
// whose handshake deadline passes, before the check answers are abandoned, not
// failed: the user keeps the whole allowance of failures, and the sessions end
// without waiting for the check.
func TestAbandonedLoginIsNotAFailure(t *testing.T) {
	h, gate := gatedHarness(t, "timeouts: {handshake: 1s}")
	for range 11 {
		sendLoginAndHangUp(t, h.addr, "alice", testPassword)
	}
	if got, _ := login(t, h.addr, "", "alice", testPassword); len(got) == 4 {
		t.Errorf("a login past its handshake deadline was answered %x", got) // the deadline closes it
	}
	waitFor(t, "12 abandoned logins", func() bool { return h.rec.get("auth abandoned") == 12 })
	waitFor(t, "the sessions to end", func() bool { return h.srv.ActiveSessions() == 0 })
	if n := h.rec.get("auth failed"); n != 0 {
		t.Errorf("%d abandoned right passwords counted as failed", n)
	}
	if !bytes.Contains([]byte(h.logs.String()), []byte("close_reason=auth_abandoned")) {
		t.Error("no accounting line with close_reason=auth_abandoned")
	}
	close(gate.open)
	waitChecksDone(t, h)
	for i := range 9 {
		login(t, h.addr, "", "alice", fmt.Sprint("typo", i))
	}
	if got, _ := login(t, h.addr, "", "alice", testPassword); !bytes.Equal(got, loginOK) {
		t.Errorf("alice after 12 abandoned logins and 9 typos: %x, want %x (9 failures of 10)", got, loginOK)
	}
}

// TestHangingUpDoesNotMakeGuessingFree: a wrong password whose client hangs up is
// still checked and counted. Otherwise a guesser could try passwords against the
// cache of verified logins, which answers at once, and hang up whenever the
// answer is slow (a miss), guessing without limit.
func TestHangingUpDoesNotMakeGuessingFree(t *testing.T) {
	h, gate := gatedHarness(t, "")
	for i := range 10 {
		sendLoginAndHangUp(t, h.addr, "alice", fmt.Sprint("guess", i))
	}
	waitFor(t, "10 abandoned guesses", func() bool { return h.rec.get("auth abandoned") >= 10 })
	close(gate.open)
	waitChecksDone(t, h)
	if got, _ := login(t, h.addr, "", "alice", testPassword); !bytes.Equal(got, loginFailed) {
		t.Errorf("alice after 10 wrong guesses whose clients hung up: %x, want refused", got)
	}
	waitFor(t, "the throttled login counted", func() bool { return h.rec.get("auth throttled") == 1 })
	if n := gate.calls.Load(); n != 10 {
		t.Errorf("%d checks, want the 10 guesses' (alice's last refused unchecked)", n)
	}
}
