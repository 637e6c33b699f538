package auth

import (
	"runtime"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// queuePerWorker is the least the default queue holds per worker: about one
// handshake timeout of bcrypt at cost 10 (50 to 80 ms a check). Beyond it the
// queue follows the checks' measured time (see GateOptions.WaitBudget).
const queuePerWorker = 128

// defaultWaitBudget is how long a queued check may expect to wait by default:
// half the default handshake timeout, leaving the other half for the client's
// round trips.
const defaultWaitBudget = 5 * time.Second

// defaultQueuePerAddress is how many checks one address may have queued. A NAT
// address of a lab where everyone logs in at once needs a few; a guesser gains
// nothing from more than its share of the workers.
const defaultQueuePerAddress = 32

// GateOptions configure a [Gate]. The zero value is usable except for Throttle,
// which should come from a validated config.
type GateOptions struct {
	// Throttle is the failed-login allowance; [Gate.SetThrottle] changes it.
	Throttle configs.AuthThrottle
	// Workers is the number of checks run at once. Zero means GOMAXPROCS-1, at
	// least 1: bcrypt is all CPU, and one core stays free for the sessions (with
	// every core on bcrypt, the reads and replies of a login waited for the
	// scheduler to preempt a check: 2,000 guesses on 2 cores held a real login
	// 90 to 140 ms with 2 workers, 6 to 45 ms with 1). A verifier that waits on
	// the network (a directory) wants more.
	Workers int
	// Queue is how many checks may wait for a worker. Zero means as many as the
	// workers get through in WaitBudget at the checks' measured average time,
	// and at least 128 per worker.
	Queue int
	// WaitBudget is how long a queued check may expect to wait when Queue is
	// zero. Zero means 5 s; [Gate.SetWaitBudget] changes it (the server passes
	// half its handshake timeout).
	WaitBudget time.Duration
	// QueuePerAddress is how many of them one client address (an IPv6 /64) may
	// hold. Zero means 32.
	QueuePerAddress int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Gate is the part of authentication that lives as long as the server, across
// reloads: the failed-login throttle and the worker pool. Make Authenticators
// from it with [Gate.Authenticator]. A Gate is safe for concurrent use and starts
// no goroutine of its own: workers start with work and end without it.
type Gate struct {
	now      func() time.Time
	workers  int // GateOptions.Workers, or its default
	throttle *throttle
	pool     *pool
}

// NewGate returns a Gate with opts' settings.
func NewGate(opts GateOptions) *Gate {
	if opts.Workers <= 0 {
		opts.Workers = max(1, runtime.GOMAXPROCS(0)-1)
	}
	if opts.WaitBudget <= 0 {
		opts.WaitBudget = defaultWaitBudget
	}
	if opts.QueuePerAddress <= 0 {
		opts.QueuePerAddress = defaultQueuePerAddress
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Gate{
		now:      opts.Now,
		workers:  opts.Workers,
		throttle: newThrottle(opts.Throttle, opts.Now),
		pool: newPool(opts.Workers, opts.QueuePerAddress, opts.Queue,
			queuePerWorker*opts.Workers, opts.WaitBudget),
	}
}

// SetThrottle applies a reloaded config's allowance; failures counted so far are
// kept.
func (g *Gate) SetThrottle(t configs.AuthThrottle) { g.throttle.setSettings(t) }

// SetWaitBudget changes how long a queued check may expect to wait (see
// GateOptions.WaitBudget).
func (g *Gate) SetWaitBudget(d time.Duration) {
	if d > 0 {
		g.pool.setWaitBudget(d)
	}
}

// Pending returns the number of checks waiting for a worker and running now.
func (g *Gate) Pending() (queued, running int) { return g.pool.stats() }

// Close turns away the checks still queued (their logins are answered busy) and
// waits for the running ones. Logins after Close are answered busy. The server
// closes its Gate once its sessions have ended.
func (g *Gate) Close() { g.pool.close() }

// Authenticator returns an Authenticator that checks passwords with v and
// remembers verified logins for cacheTTL (zero: not at all), with g's throttle and
// pool. A reload makes a new one, which starts with an empty cache. A v that is a
// [Tuner] sets the pool's workers (from now on, for every Authenticator of g) and
// the cache's stale window; otherwise the workers go back to the Gate's own number.
//
// A v made by [WithTickets] gives the Authenticator its password verifier
// (possibly none) and its Kerberos login; verified users' identities from its
// lookup are remembered as logins are, for cacheTTL and the stale window.
func (g *Gate) Authenticator(v Verifier, cacheTTL time.Duration) *Authenticator {
	a := &Authenticator{gate: g, v: v, inflight: map[loginKey]*check{}, looking: map[string]*lookupCall{}}
	if l, ok := v.(*logins); ok {
		a.v, a.tickets, a.lookup = l.passwords, l.tickets, l.lookup
	}
	var t Tuning
	if tv, ok := a.v.(Tuner); ok {
		t = tv.Tuning()
	}
	g.pool.setWorkers(cmpOr(t.Workers, g.workers))
	a.cache = newCache(cacheTTL, t.StaleTTL, g.now)
	a.lookups = newCache(cacheTTL, t.StaleTTL, g.now)
	return a
}

// Workers returns the number of checks that may run at once.
func (g *Gate) Workers() int { return g.pool.workerCount() }
