package auth

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func key(addr string) netip.Prefix { return addrKey(netip.MustParseAddr(addr)) }

// orderLog records the order jobs ran in.
type orderLog struct {
	mu  sync.Mutex
	ran []string
}

func (l *orderLog) job(name string) func() {
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.ran = append(l.ran, name)
	}
}

func (l *orderLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ran)
}

// blockingJob runs until release is closed, and says when it started.
func blockingJob(log *orderLog, name string) (run func(), started, release chan struct{}) {
	started, release = make(chan struct{}), make(chan struct{})
	return func() { close(started); <-release; log.job(name)() }, started, release
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustSubmit(t *testing.T, p *pool, k netip.Prefix, run func()) {
	t.Helper()
	if !p.submit(k, run, func() { t.Errorf("job for %v dropped", k) }) {
		t.Fatalf("submit for %v refused", k)
	}
}

// TestPoolOrder: with one worker busy on address A's first check, A queues three
// more, B three and C one. New addresses go before old ones, the one with fewer
// queued first (C, then B); then the addresses take turns.
func TestPoolOrder(t *testing.T) {
	p := newPool(1, 8, 100, 0, 0)
	log := &orderLog{}
	a, b, c := key("192.0.2.1"), key("192.0.2.2"), key("2001:db8::1")
	run, started, release := blockingJob(log, "A1")
	mustSubmit(t, p, a, run)
	<-started
	for _, j := range []struct {
		k    netip.Prefix
		name string
	}{{a, "A2"}, {a, "A3"}, {a, "A4"}, {b, "B1"}, {b, "B2"}, {b, "B3"}, {c, "C1"}} {
		mustSubmit(t, p, j.k, log.job(j.name))
	}
	close(release)
	want := []string{"A1", "C1", "B1", "A2", "B2", "A3", "B3", "A4"}
	waitUntil(t, "every job", func() bool { return len(log.get()) == len(want) })
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	waitUntil(t, "the worker to end", func() bool { _, running := p.stats(); return running == 0 })
	if len(p.flows) != 0 {
		t.Errorf("%d flows kept after the queue emptied", len(p.flows))
	}
}

// TestPoolKeepsAGuessingAddressBehindANewOne: an address that keeps its queue
// full is served once per turn, and a new address's single check goes next.
func TestPoolKeepsAGuessingAddressBehindANewOne(t *testing.T) {
	p := newPool(1, 8, 100, 0, 0)
	log := &orderLog{}
	run, started, release := blockingJob(log, "guess")
	mustSubmit(t, p, key("192.0.2.1"), run)
	<-started
	for range 8 {
		mustSubmit(t, p, key("192.0.2.1"), log.job("guess"))
	}
	mustSubmit(t, p, key("192.0.2.7"), log.job("real"))
	close(release)
	waitUntil(t, "every job", func() bool { return len(log.get()) == 10 })
	if got := log.get(); got[1] != "real" {
		t.Errorf("order %v: the real login waited behind the guesses", got)
	}
	waitUntil(t, "the worker to end", func() bool { _, running := p.stats(); return running == 0 })
}

// TestPoolBounds: an address may queue perAddr checks; a full queue turns away the
// newest check of the longest queue to admit an address with fewer, and refuses
// an address that already has as many as any other.
func TestPoolBounds(t *testing.T) {
	p := newPool(1, 4, 6, 0, 0)
	log := &orderLog{}
	run, started, release := blockingJob(log, "running")
	a, b, c := key("192.0.2.1"), key("192.0.2.2"), key("192.0.2.3")
	mustSubmit(t, p, a, run)
	<-started
	var droppedA atomic.Int32
	submitA := func() bool { return p.submit(a, log.job("A"), func() { droppedA.Add(1) }) }
	for i := range 4 {
		if !submitA() {
			t.Fatalf("A's check %d refused under perAddr 4", i+1)
		}
	}
	if submitA() {
		t.Fatal("A's fifth check queued over perAddr 4")
	}
	mustSubmit(t, p, b, log.job("B"))
	mustSubmit(t, p, b, log.job("B"))
	if q, _ := p.stats(); q != 6 {
		t.Fatalf("queued %d, want 6 (full)", q)
	}
	mustSubmit(t, p, c, log.job("C")) // full: A's newest goes
	if droppedA.Load() != 1 {
		t.Fatalf("%d of A's checks dropped to admit C, want 1", droppedA.Load())
	}
	if submitA() {
		t.Error("A, the longest queue, admitted into a full queue")
	}
	if !p.submit(b, log.job("B"), func() { t.Error("B dropped") }) || droppedA.Load() != 2 {
		t.Errorf("B with 2 queued not admitted over A's 3 (dropped %d)", droppedA.Load())
	}
	if q, _ := p.stats(); q != 6 {
		t.Errorf("queued %d, want 6", q)
	}
	close(release)
	waitUntil(t, "every job", func() bool { return len(log.get()) == 7 })
	waitUntil(t, "the worker to end", func() bool { _, running := p.stats(); return running == 0 })
}

func TestPoolRunsAtMostWorkersAtOnce(t *testing.T) {
	p := newPool(3, 100, 100, 0, 0)
	var now, peak, done atomic.Int32
	for i := range 30 {
		mustSubmit(t, p, key(fmt.Sprintf("192.0.2.%d", i%5+1)), func() {
			n := now.Add(1)
			for {
				old := peak.Load()
				if n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			now.Add(-1)
			done.Add(1)
		})
	}
	waitUntil(t, "every job", func() bool { return done.Load() == 30 })
	waitUntil(t, "the workers to end", func() bool { _, running := p.stats(); return running == 0 })
	if peak.Load() > 3 {
		t.Errorf("%d jobs ran at once with 3 workers", peak.Load())
	}
}

// TestPoolClose: close turns the queued checks away, waits for the running one,
// and refuses new ones.
func TestPoolClose(t *testing.T) {
	p := newPool(1, 8, 8, 0, 0)
	log := &orderLog{}
	run, started, release := blockingJob(log, "running")
	mustSubmit(t, p, key("192.0.2.1"), run)
	<-started
	var dropped atomic.Int32
	for range 3 {
		p.submit(key("192.0.2.2"), log.job("queued"), func() { dropped.Add(1) })
	}
	closed := make(chan struct{})
	go func() { p.close(); close(closed) }()
	waitUntil(t, "queued checks dropped", func() bool { return dropped.Load() == 3 })
	select {
	case <-closed:
		t.Fatal("close returned while a check was running")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-closed
	if got := log.get(); !slices.Equal(got, []string{"running"}) {
		t.Errorf("ran %v, want only the running check", got)
	}
	if p.submit(key("192.0.2.3"), log.job("late"), func() {}) {
		t.Error("a closed pool queued a check")
	}
}

// TestPoolQueueFollowsCheckTime: with no fixed bound, the queue holds what the
// workers get through in the wait budget at the measured check time (a morning's
// thundering herd of cheap checks waits instead of being turned away), and no
// less than its floor when checks are slow.
func TestPoolQueueFollowsCheckTime(t *testing.T) {
	tests := []struct {
		avg  time.Duration
		want int
	}{
		{0, 128},                     // nothing measured yet: the floor
		{2 * time.Millisecond, 2500}, // cost 5: 5 s / 2 ms
		{60 * time.Millisecond, 128}, // cost 10: 83 fit, the floor binds
	}
	for _, tc := range tests {
		p := newPool(1, 32, 0, 128, 5*time.Second)
		p.avgCheck = tc.avg
		if got := p.limit(); got != tc.want {
			t.Errorf("average check %v: queue bound %d, want %d", tc.avg, got, tc.want)
		}
	}
	p := newPool(2, 32, 0, 256, 5*time.Second)
	for range 100 {
		p.observe(time.Millisecond)
	}
	if got := p.limit(); got != 10000 {
		t.Errorf("2 workers at 1 ms a check: queue bound %d, want 10000", got)
	}
}

// TestPoolSetWorkers: raising the workers starts checks already queued at once;
// lowering them lets the extra workers end after their check.
func TestPoolSetWorkers(t *testing.T) {
	p := newPool(1, 32, 0, 128, time.Second)
	hold := make(chan struct{})
	var running, most atomic.Int64
	job := func() {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-hold
		running.Add(-1)
	}
	for i := range 4 {
		if !p.submit(key(fmt.Sprintf("192.0.2.%d", i)), job, func() {}) {
			t.Fatal("submit refused")
		}
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("one running", func() bool { return running.Load() == 1 })
	p.setWorkers(4)
	waitFor("four running", func() bool { return running.Load() == 4 })
	close(hold)
	waitFor("all done", func() bool { q, r := p.stats(); return q == 0 && r == 0 })

	p.setWorkers(1)
	most.Store(0)
	hold = make(chan struct{})
	for i := range 4 {
		p.submit(key(fmt.Sprintf("192.0.2.%d", i)), job, func() {})
	}
	waitFor("one running", func() bool { return running.Load() == 1 })
	time.Sleep(20 * time.Millisecond)
	close(hold)
	waitFor("all done", func() bool { q, r := p.stats(); return q == 0 && r == 0 })
	if most.Load() != 1 {
		t.Errorf("%d checks ran at once after lowering to 1 worker", most.Load())
	}
	p.close()
}
