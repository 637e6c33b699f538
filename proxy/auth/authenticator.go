package auth

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Authenticator answers logins for every front: the cache of verified logins, one
// check per user and password however many sessions bring them at once, the
// throttle and the fair worker pool of its [Gate], and rejections padded to the
// verifier's [FailureFloorer] floor. It is safe for concurrent use.
type Authenticator struct {
	gate  *Gate
	v     Verifier // nil: no password logins (Kerberos only)
	cache *cache

	tickets TicketVerifier // nil: no Kerberos logins
	lookup  UserLookup     // nil: a ticket's user needs no directory entry
	lookups *cache         // identities lookup gave, keyed by user name

	mu sync.Mutex
	// inflight holds the checks queued or running, by login: sessions that bring
	// a login already being checked wait for that check instead of running their
	// own. Without it, a client opening 16 sessions at once, or the sessions of a
	// user whose cache entry just expired, pay 16 bcrypt runs.
	inflight map[loginKey]*check
	looking  map[string]*lookupCall // the directory lookups running, by user
}

// check is one verification that several logins may wait for.
type check struct {
	key  loginKey
	tk   ticket        // the throttle's ticket of the login that queued it
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
	// throttled: the name led to an entry that has used up its allowance of
	// failures from the address, so the password was not tried. It counts as a
	// failure of the name (so that spellings cannot buy searches without end),
	// and is answered as throttled.
	throttled bool
}

// Login checks user's password for a client at the given address. It returns when
// the answer is known, or with [ResultAbandoned] when ctx ends first (the client
// left, or its handshake deadline passed).
//
// The name is first made the verifier's (see [UserNamer]): the cache, the checks
// in flight and the throttle all key on it, so that spellings of one account do
// not multiply its allowance of failures. A check, once queued, runs to its end
// even if its client leaves, and its verdict is what counts: a right password is
// never a failure, a wrong one always is. If leaving made a wrong guess free, a
// client could ask whether a password is in the cache of verified logins (an
// answer in microseconds) and hang up on every miss, guessing without limit.
func (a *Authenticator) Login(ctx context.Context, client netip.Addr, user, password string) Outcome {
	if a.v == nil {
		// No password login is configured (the fronts offer none): refused
		// without a check, and not counted, as no guess was checked.
		return Outcome{Result: ResultFailed}
	}
	name, valid := userName(a.v, user)
	p := pair{addr: addrKey(client), user: name}
	t := a.gate.throttle
	if t.blocked(p) {
		return Outcome{Result: ResultThrottled}
	}
	if !valid {
		// No account has this name: a failed login of it, answered as a wrong
		// password is (counted and padded), with no check to run.
		t.fail(ticket{p: p})
		a.pad(ctx, 0)
		return Outcome{Result: ResultFailed}
	}
	key := a.cache.keyOf(name, password)
	if id, ok := a.cache.get(key); ok {
		t.succeed(ticket{p: p})
		return Outcome{Identity: id, Result: ResultOK}
	}
	c, runner, refused := a.join(ctx, key, p, name, password)
	if refused == ResultAbandoned {
		return Outcome{Result: refused, Err: ctx.Err()}
	} else if refused != "" {
		return Outcome{Result: refused}
	}
	return a.await(ctx, c, p, runner)
}

// join waits on the check of key that is running now, or reserves a failure of
// p and queues a new check, which then settles p's account (it is the runner).
// Over the address's allowance, the login first waits for a turn (turns.go).
func (a *Authenticator) join(ctx context.Context, key loginKey, p pair, name, password string) (c *check, runner bool, refusal string) {
	t := a.gate.throttle
	tk := ticket{p: p}
	for {
		var r reservation
		c, runner, r = a.start(key, &tk)
		if r == needsTurn && !tk.turn {
			tk.pw = t.passwordKey(password)
			if !t.takeTurn(ctx, p.addr, tk.pw, a.gate.pool.budget()) {
				if ctx.Err() != nil {
					return nil, false, ResultAbandoned
				}
				return nil, false, ResultThrottled
			}
			tk.turn = true
			continue
		}
		if r != reserved || !runner {
			t.release(tk) // gives back the turn it may have taken
			if r != reserved {
				return nil, false, ResultThrottled
			}
			return c, false, ""
		}
		break
	}
	busy := func() { a.finish(c, checkResult{busy: true}) }
	if !a.gate.pool.submit(p.addr, func() { a.run(c, name, password) }, busy) {
		busy()
	}
	return c, true, ""
}

// start joins the check of key in flight, or reserves tk's failure and registers
// a new check of key, which the caller queues.
func (a *Authenticator) start(key loginKey, tk *ticket) (*check, bool, reservation) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.inflight[key]; c != nil {
		c.logins++
		return c, false, reserved
	}
	if r := a.gate.throttle.reserve(tk); r != reserved {
		return nil, false, r
	}
	c := &check{key: key, tk: *tk, done: make(chan struct{}), logins: 1}
	a.inflight[key] = c
	return c, true, reserved
}

// run verifies on a pool worker. A panic in the verifier answers Unavailable
// rather than take the daemon down or leave the check's waiters hanging. The
// check has no deadline of its own: a verifier bounds its own waits (a directory
// has its timeout), and bcrypt cannot be stopped.
func (a *Authenticator) run(c *check, name, password string) {
	start := a.gate.now()
	res := checkResult{verdict: Unavailable}
	var entry ticket
	defer func() {
		if r := recover(); r != nil {
			res = checkResult{verdict: Unavailable, err: fmt.Errorf("verifier panicked: %v", r)}
		}
		res.took = a.gate.now().Sub(start)
		a.settleEntry(entry, res)
		a.finish(c, res)
	}()
	res.id, res.verdict, res.err = a.verify(c.tk.p.addr, name, password, &entry, &res.throttled)
}

// verify asks the verifier; an [EntryVerifier] is asked to try the password only
// if the entry it found has failures left from addr, which entry then reserves.
func (a *Authenticator) verify(addr netip.Prefix, name, password string, entry *ticket, throttled *bool) (Identity, Verdict, error) {
	ev, ok := a.v.(EntryVerifier)
	if !ok {
		return a.v.Verify(context.Background(), name, password)
	}
	admit := func(dn string) bool {
		if entry.reserved || *throttled {
			return false // once only
		}
		// DNs compare without case in every directory this serves; merging
		// two entries that differ only in case can only make the count stricter.
		*entry = ticket{p: pair{addr: addr, user: strings.ToLower(dn), entry: true}}
		if a.gate.throttle.reserve(entry) != reserved {
			*throttled = true
			return false
		}
		return true
	}
	return ev.VerifyEntry(context.Background(), name, password, admit)
}

// settleEntry settles the entry's reservation: a wrong password is its failure.
func (a *Authenticator) settleEntry(entry ticket, res checkResult) {
	switch {
	case !entry.reserved:
	case res.verdict == Rejected && !res.throttled:
		a.gate.throttle.fail(entry)
	default:
		a.gate.throttle.release(entry)
	}
}

// finish publishes a check's result and settles the account of the login that
// queued it, whether or not that login still waits.
func (a *Authenticator) finish(c *check, res checkResult) {
	a.mu.Lock()
	if a.inflight[c.key] == c {
		delete(a.inflight, c.key)
	}
	c.finished, c.res = true, res
	a.mu.Unlock()
	t := a.gate.throttle
	switch {
	case res.busy || res.verdict == Unavailable:
		t.release(c.tk)
	case res.verdict == OK:
		a.cache.put(c.key, res.id)
		t.succeed(c.tk)
	default:
		t.fail(c.tk)
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
			t.succeed(ticket{p: p})
		}
		return Outcome{Identity: res.id, Result: ResultOK}
	}
	if !runner {
		t.fail(ticket{p: p})
	}
	// Padded like a rejection even when the entry was throttled: answered at
	// once, it would tell that the name leads to an entry (an unknown user's
	// spellings have no entry to throttle).
	a.pad(ctx, res.took)
	if res.throttled {
		return Outcome{Result: ResultThrottled}
	}
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
