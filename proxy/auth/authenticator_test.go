package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/metrics"
)

// stubVerifier knows one password per user, counts its checks, and can hold
// them until released, answer Unavailable, or panic.
type stubVerifier struct {
	passwords   map[string]string
	calls       atomic.Int64
	hold        chan struct{} // nil: answer at once; else wait until closed
	entered     chan struct{} // receives once per check that started, if not nil
	unavailable bool
	panics      bool
	took        time.Duration // how long each check takes
}

func (s *stubVerifier) Verify(ctx context.Context, user, password string) (Identity, Verdict, error) {
	s.calls.Add(1)
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.hold != nil {
		<-s.hold
	}
	time.Sleep(s.took)
	switch {
	case s.panics:
		panic("stub panic")
	case s.unavailable:
		return Identity{}, Unavailable, errors.New("directory unreachable")
	case s.passwords[user] == password && password != "":
		return Identity{User: user, Group: "staff"}, OK, nil
	}
	return Identity{}, Rejected, nil
}

// flooredVerifier adds a failure floor to a stub.
type flooredVerifier struct {
	*stubVerifier
	floor time.Duration
}

func (f flooredVerifier) FailureFloor() time.Duration { return f.floor }

var (
	client  = netip.MustParseAddr("192.0.2.10")
	client2 = netip.MustParseAddr("192.0.2.20")
)

func newTestGate(clock *fakeClock, workers int) *Gate {
	now := time.Now
	if clock != nil {
		now = clock.now
	}
	g := NewGate(GateOptions{Throttle: testThrottleSettings(), Workers: workers, Now: now})
	return g
}

func closeGate(t *testing.T, g *Gate) { t.Cleanup(g.Close) }

func TestLoginVerifiesAndCaches(t *testing.T) {
	clock := newFakeClock()
	g := newTestGate(clock, 1)
	closeGate(t, g)
	v := &stubVerifier{passwords: map[string]string{"alice": "wonderland"}}
	a := g.Authenticator(v, time.Minute)
	ctx := context.Background()
	if out := a.Login(ctx, client, "alice", "wonderland"); out.Result != ResultOK || out.Identity != (Identity{"alice", "staff"}) {
		t.Fatalf("right password: %+v", out)
	}
	if out := a.Login(ctx, client2, "alice", "wonderland"); out.Result != ResultOK || v.calls.Load() != 1 {
		t.Fatalf("second login: %+v after %d checks, want ok from the cache", out, v.calls.Load())
	}
	if out := a.Login(ctx, client, "alice", "wrong"); out.Result != ResultFailed || a.cache.size() != 1 {
		t.Fatalf("wrong password: %+v, cache size %d", out, a.cache.size())
	}
	for k := range a.cache.entries {
		if bytes.Contains(k[:], []byte("wonderland")) {
			t.Fatal("cache key holds the password")
		}
	}
	clock.add(time.Minute)
	if out := a.Login(ctx, client, "alice", "wonderland"); out.Result != ResultOK || v.calls.Load() != 3 {
		t.Fatalf("after the TTL: %+v after %d checks, want a new check", out, v.calls.Load())
	}
	nocache := g.Authenticator(v, 0)
	nocache.Login(ctx, client, "alice", "wonderland")
	nocache.Login(ctx, client, "alice", "wonderland")
	if v.calls.Load() != 5 || nocache.cache.size() != 0 {
		t.Errorf("cache_ttl 0: %d checks, %d cached; want every login checked", v.calls.Load(), nocache.cache.size())
	}
}

// TestConcurrentLoginsOfOnePairShareOneCheck: sessions that bring the same user
// and password at the same moment (a client opening several connections, or a
// user's sessions after the cache entry expired) run one check between them,
// whether the password is right or wrong.
func TestConcurrentLoginsOfOnePairShareOneCheck(t *testing.T) {
	for _, tc := range []struct {
		password, want string
	}{{"wonderland", ResultOK}, {"wrong", ResultFailed}} {
		g := NewGate(GateOptions{Throttle: allowance(100, 1000), Workers: 1})
		v := &stubVerifier{passwords: map[string]string{"alice": "wonderland"}, hold: make(chan struct{})}
		a := g.Authenticator(v, time.Minute)
		const sessions = 16
		results := make(chan string, sessions)
		for range sessions {
			go func() { results <- a.Login(context.Background(), client, "alice", tc.password).Result }()
		}
		key := a.cache.keyOf("alice", tc.password)
		waitUntil(t, "every session waiting on the check", func() bool {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.inflight[key] != nil && a.inflight[key].logins == sessions
		})
		close(v.hold)
		for range sessions {
			if got := <-results; got != tc.want {
				t.Fatalf("password %q: result %s, want %s", tc.password, got, tc.want)
			}
		}
		if n := v.calls.Load(); n != 1 {
			t.Errorf("password %q: %d sessions at once ran %d checks, want one", tc.password, sessions, n)
		}
		if len(a.inflight) != 0 {
			t.Errorf("password %q: %d checks left in flight", tc.password, len(a.inflight))
		}
		g.Close()
	}
}

// allowance is the test throttle with other allowances.
func allowance(perUser, perAddr int) configs.AuthThrottle {
	s := testThrottleSettings()
	s.FailuresPerUser, s.FailuresPerAddress = perUser, perAddr
	return s
}

// TestConcurrentGuessesReserveTheirFailures: 200 different passwords at once from
// one address run no more checks than the allowance (3 here).
func TestConcurrentGuessesReserveTheirFailures(t *testing.T) {
	g := newTestGate(nil, 2)
	closeGate(t, g)
	v := &stubVerifier{passwords: map[string]string{"alice": "wonderland"}, took: time.Millisecond}
	a := g.Authenticator(v, time.Minute)
	var wg sync.WaitGroup
	var throttled atomic.Int64
	for i := range 200 {
		wg.Go(func() {
			if a.Login(context.Background(), client, "alice", fmt.Sprint("guess", i)).Result == ResultThrottled {
				throttled.Add(1)
			}
		})
	}
	wg.Wait()
	if n := v.calls.Load(); n > 3 {
		t.Errorf("200 guesses at once ran %d checks, want at most the allowance of 3", n)
	}
	if throttled.Load() < 197 {
		t.Errorf("%d guesses throttled, want at least 197", throttled.Load())
	}
}

// TestAbandonedLogins: a login whose client leaves before the answer is
// abandoned. Its check still runs: a right password is no failure and is cached,
// a wrong one counts, so that hanging up cannot make guessing free.
func TestAbandonedLogins(t *testing.T) {
	g := newTestGate(nil, 1)
	closeGate(t, g)
	v := &stubVerifier{passwords: map[string]string{"alice": "wonderland"}, hold: make(chan struct{}), entered: make(chan struct{}, 10)}
	a := g.Authenticator(v, time.Minute)
	abandon := func(user, password string) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan Outcome)
		go func() { done <- a.Login(ctx, client, user, password) }()
		waitUntil(t, "the login queued", func() bool {
			a.mu.Lock()
			defer a.mu.Unlock()
			return len(a.inflight) > 0 && a.inflight[a.cache.keyOf(user, password)] != nil
		})
		cancel()
		if out := <-done; out.Result != ResultAbandoned || !errors.Is(out.Err, context.Canceled) {
			t.Fatalf("%s/%s: %+v, want abandoned", user, password, out)
		}
	}
	abandon("alice", "wonderland") // runs, and holds the worker
	<-v.entered
	abandon("bob", "guess") // queued behind it
	close(v.hold)
	waitUntil(t, "both checks", func() bool { q, r := g.Pending(); return v.calls.Load() == 2 && q+r == 0 })
	th := g.throttle
	if th.blocked(pairOf("192.0.2.10", "alice")) || th.pairs[pairOf("192.0.2.10", "alice")] != nil {
		t.Errorf("an abandoned right password left a tally: %+v", th.pairs[pairOf("192.0.2.10", "alice")])
	}
	if tl := th.pairs[pairOf("192.0.2.10", "bob")]; tl == nil || tl.failures != 1 || tl.pending != 0 {
		t.Errorf("an abandoned wrong password: tally %+v, want 1 failure", tl)
	}
	if out := a.Login(context.Background(), client, "alice", "wonderland"); out.Result != ResultOK || v.calls.Load() != 2 {
		t.Errorf("alice after her abandoned login: %+v after %d checks, want ok from the cache", out, v.calls.Load())
	}
}

func TestUnavailableIsNotAFailure(t *testing.T) {
	g := newTestGate(nil, 1)
	closeGate(t, g)
	v := &stubVerifier{unavailable: true}
	a := g.Authenticator(v, time.Minute)
	for range 10 {
		out := a.Login(context.Background(), client, "alice", "wonderland")
		if out.Result != ResultUnavailable || out.Err == nil || !strings.Contains(out.Err.Error(), "unreachable") {
			t.Fatalf("%+v, want unavailable with the verifier's error", out)
		}
	}
	if len(g.throttle.pairs)+len(g.throttle.addrs) != 0 || a.cache.size() != 0 {
		t.Errorf("unavailable answers left %d tallies, %d cached", len(g.throttle.pairs)+len(g.throttle.addrs), a.cache.size())
	}
}

func TestVerifierPanicAnswersUnavailable(t *testing.T) {
	g := newTestGate(nil, 1)
	closeGate(t, g)
	a := g.Authenticator(&stubVerifier{panics: true}, time.Minute)
	for range 3 { // the worker survives
		if out := a.Login(context.Background(), client, "alice", "x"); out.Result != ResultUnavailable ||
			out.Err == nil || !strings.Contains(out.Err.Error(), "panicked") {
			t.Fatalf("%+v, want unavailable naming the panic", out)
		}
	}
}

// TestBusyIsNotAFailure: with the queue full, a login is refused busy at once,
// and that is no failure.
func TestBusyIsNotAFailure(t *testing.T) {
	g := NewGate(GateOptions{Throttle: testThrottleSettings(), Workers: 1, Queue: 1, QueuePerAddress: 1})
	closeGate(t, g)
	v := &stubVerifier{passwords: map[string]string{"alice": "wonderland"}, hold: make(chan struct{}), entered: make(chan struct{}, 10)}
	a := g.Authenticator(v, time.Minute)
	results := make(chan string, 2)
	go func() { results <- a.Login(context.Background(), client, "alice", "one").Result }()
	<-v.entered // the worker is busy
	go func() { results <- a.Login(context.Background(), client2, "alice", "two").Result }()
	waitUntil(t, "the second login queued", func() bool { q, _ := g.Pending(); return q == 1 })
	// client2 has the one queued check; another of its logins is refused, and the
	// queue is full for client too (which has none queued, but the longest has 1).
	if out := a.Login(context.Background(), client2, "alice", "three"); out.Result != ResultBusy {
		t.Errorf("over the per-address queue: %+v, want busy", out)
	}
	close(v.hold)
	for range 2 {
		if got := <-results; got != ResultFailed {
			t.Errorf("queued login: %s, want failed", got)
		}
	}
	if tl := g.throttle.pairs[pairOf("192.0.2.20", "alice")]; tl == nil || tl.failures != 1 || tl.pending != 0 {
		t.Errorf("client2's tally %+v, want 1 failure (the checked one), nothing pending", tl)
	}
}

// TestReloadKeepsTheThrottleAndDropsTheCache: an Authenticator made at reload
// from the same Gate starts with an empty cache but the failures counted so far.
func TestReloadKeepsTheThrottleAndDropsTheCache(t *testing.T) {
	g := newTestGate(nil, 1)
	closeGate(t, g)
	v := &stubVerifier{passwords: map[string]string{"alice": "wonderland"}}
	before := g.Authenticator(v, time.Minute)
	before.Login(context.Background(), client, "alice", "wonderland")
	for i := range 3 {
		before.Login(context.Background(), client, "bob", fmt.Sprint("guess", i))
	}
	after := g.Authenticator(v, time.Minute)
	if out := after.Login(context.Background(), client, "bob", "guess9"); out.Result != ResultThrottled {
		t.Errorf("bob after the reload: %+v, want still throttled", out)
	}
	after.Login(context.Background(), client, "alice", "wonderland")
	if v.calls.Load() != 5 {
		t.Errorf("%d checks; want alice checked again after the reload (5)", v.calls.Load())
	}
}

// TestResultsAreTheMetricsLabels: the results are the label values metrics
// pre-initialises, so every one shows as 0 before it happens.
func TestResultsAreTheMetricsLabels(t *testing.T) {
	if !slices.Equal(Results(), metrics.AuthResults()) {
		t.Errorf("auth.Results() %v, metrics.AuthResults() %v", Results(), metrics.AuthResults())
	}
}
