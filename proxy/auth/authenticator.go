package auth

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Authenticator answers logins for every front: the cache of verified logins, one
// check per user and password however many sessions bring them at once, the
// throttle and the fair worker pool of its [Gate], and rejections padded to the
// verifier's [FailureFloorer] floor. It is safe for concurrent use.
type Authenticator struct {
	gate  *Gate
	v     Verifier
	cache *cache

	mu sync.Mutex
	// inflight holds the checks queued or running, by login: sessions that bring
	// a login already being checked wait for that check instead of running their
	// own. Without it, a client opening 16 sessions at once, or the sessions of a
	// user whose cache entry just expired, pay 16 bcrypt runs.
	inflight map[loginKey]*check
}

// check is one verification that several logins may wait for.
type check struct {
	key  loginKey
	done chan struct{} // closed once res is set
	res  checkResult
	// Guarded by the Authenticator's mu:
	finished bool // res is set
	logins   int  // logins that queued or joined it
}

type checkResult struct {
	id      Identity
	verdict Verdict
	err     error
	took    time.Duration // of Verify, which the floor is measured from
	busy    bool          // never run: turned away from the queue
}

// Login checks user's password for a client at the given address. It returns when
// the answer is known, or with [ResultAbandoned] when ctx ends first (the client
// left, or its handshake deadline passed).
//
// A check, once queued, runs to its end even if its client leaves, and its
// verdict is what counts: a right password is never a failure, a wrong one always
// is. If leaving made a wrong guess free, a client could ask whether a password is
// in the cache of verified logins (an answer in microseconds) and hang up on
// every miss, guessing without limit.
func (a *Authenticator) Login(ctx context.Context, client netip.Addr, user, password string) Outcome {
	p := pair{addr: addrKey(client), user: user}
	t := a.gate.throttle
	if t.blocked(p) {
		return Outcome{Result: ResultThrottled}
	}
	key := a.cache.keyOf(user, password)
	if id, ok := a.cache.get(key); ok {
		t.succeed(p, false)
		return Outcome{Identity: id, Result: ResultOK}
	}
	c, runner, refused := a.join(key, p, user, password)
	if refused != "" {
		return Outcome{Result: refused}
	}
	return a.await(ctx, c, p, runner)
}

// join waits on the check of key that is running now, or reserves a failure of
// p and queues a new check, which then settles p's account (it is the runner).
func (a *Authenticator) join(key loginKey, p pair, user, password string) (c *check, runner bool, refused string) {
	a.mu.Lock()
	if c := a.inflight[key]; c != nil {
		c.logins++
		a.mu.Unlock()
		return c, false, ""
	}
	if !a.gate.throttle.reserve(p) {
		a.mu.Unlock()
		return nil, false, ResultThrottled
	}
	c = &check{key: key, done: make(chan struct{}), logins: 1}
	a.inflight[key] = c
	a.mu.Unlock()

	busy := func() { a.finish(c, key, p, checkResult{busy: true}) }
	if !a.gate.pool.submit(p.addr, func() { a.run(c, key, p, user, password) }, busy) {
		busy()
	}
	return c, true, ""
}

// run verifies on a pool worker. A panic in the verifier answers Unavailable
// rather than take the daemon down or leave the check's waiters hanging. The
// check has no deadline of its own: a verifier bounds its own waits (a directory
// has its timeout), and bcrypt cannot be stopped.
func (a *Authenticator) run(c *check, key loginKey, p pair, user, password string) {
	start := a.gate.now()
	res := checkResult{verdict: Unavailable}
	defer func() {
		if r := recover(); r != nil {
			res = checkResult{verdict: Unavailable, err: fmt.Errorf("verifier panicked: %v", r)}
		}
		res.took = a.gate.now().Sub(start)
		a.finish(c, key, p, res)
	}()
	res.id, res.verdict, res.err = a.v.Verify(context.Background(), user, password)
}

// finish publishes a check's result and settles the account of the login that
// queued it, whether or not that login still waits.
func (a *Authenticator) finish(c *check, key loginKey, p pair, res checkResult) {
	a.mu.Lock()
	if a.inflight[key] == c {
		delete(a.inflight, key)
	}
	c.finished, c.res = true, res
	a.mu.Unlock()
	t := a.gate.throttle
	switch {
	case res.busy || res.verdict == Unavailable:
		t.release(p)
	case res.verdict == OK:
		a.cache.put(key, res.id)
		t.succeed(p, true)
	default:
		t.fail(p, true)
	}
	close(c.done)
}

// await waits for c's result, or leaves when ctx ends first. A login that joined
// another's check settles its own account here.
func (a *Authenticator) await(ctx context.Context, c *check, p pair, runner bool) Outcome {
	select {
	case <-c.done:
	case <-ctx.Done():
		if !a.isFinished(c) {
			return Outcome{Result: ResultAbandoned, Err: ctx.Err()}
		}
	}
	res, t := c.res, a.gate.throttle
	switch {
	case res.busy:
		return Outcome{Result: ResultBusy}
	case res.verdict == Unavailable:
		if id, ok := a.cache.getStale(c.key); ok {
			// Verified shortly before the verifier became unavailable, with
			// this password: let them in. Not a verification, so the throttle
			// learns nothing.
			return Outcome{Identity: id, Result: ResultOK, Stale: true, Err: res.err}
		}
		return Outcome{Result: ResultUnavailable, Err: res.err}
	case res.verdict == OK:
		if !runner {
			t.succeed(p, false)
		}
		return Outcome{Identity: res.id, Result: ResultOK}
	}
	if !runner {
		t.fail(p, false)
	}
	a.pad(ctx, res.took)
	return Outcome{Result: ResultFailed}
}

// isFinished reports whether c's result is set, for a login whose context ended:
// if the answer was already there, it stands.
func (a *Authenticator) isFinished(c *check) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return c.finished
}

// pad sleeps until a rejection has taken the verifier's failure floor.
func (a *Authenticator) pad(ctx context.Context, took time.Duration) {
	f, ok := a.v.(FailureFloorer)
	if !ok {
		return
	}
	wait := f.FailureFloor() - took
	if wait <= 0 {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}
