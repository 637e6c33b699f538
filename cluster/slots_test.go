package cluster

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sockshaper/sockshaper/internal/redistest"
	"github.com/sockshaper/sockshaper/metrics"
)

// runSlots writes n's released slots in the background until the test ends.
func runSlots(t *testing.T, n *Node) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.slots.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// reserveAll asks for n slots of user at once, spread over the nodes in turn,
// and returns how many each node got.
func reserveAll(nodes []*Node, user string, n, max int) []int {
	got := make([]atomic.Int32, len(nodes))
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if nodes[i%len(nodes)].Slots().Reserve(context.Background(), user, max) {
				got[i%len(nodes)].Add(1)
			}
		})
	}
	wg.Wait()
	out := make([]int, len(nodes))
	for i := range got {
		out[i] = int(got[i].Load())
	}
	return out
}

func sum(xs []int) (s int) {
	for _, x := range xs {
		s += x
	}
	return s
}

// waitHeld waits until Redis holds want of user's sessions in node's hash.
func waitHeld(t *testing.T, rc *redis.Client, node, user string, want int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		v, _ := rc.HGet(context.Background(), "sockshaper:slots:"+node, user).Result()
		var n int
		if v != "" {
			n = parseCount(v)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %q of %s's sessions in redis, want %d", node, v, user, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func parseCount(v string) (n int) {
	for _, c := range v {
		if c == ':' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// TestReserveHoldsCapAcrossInstances: 30 reservations at once, 15 on each of
// two instances, against a cap of 10: exactly 10 are granted; given back, the
// slots can be taken again, on either instance.
func TestReserveHoldsCapAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rc.Close()
	rec := &countingRecorder{}
	a, b := newNode(t, srv.URL(), "a", rec), newNode(t, srv.URL(), "b", rec)
	runSlots(t, a)
	runSlots(t, b)
	exchangeOK(t, a, Report{})
	exchangeOK(t, b, Report{})
	nodes := []*Node{a, b}
	for round := range 3 {
		got := reserveAll(nodes, "alice", 30, 10)
		t.Logf("round %d: %v of 30 granted against a cap of 10", round, got)
		if sum(got) != 10 {
			t.Fatalf("round %d: %d slots granted (%v), want exactly the cap of 10", round, sum(got), got)
		}
		for i, n := range nodes {
			for range got[i] {
				n.Slots().Release("alice")
			}
		}
		waitHeld(t, rc, "a", "alice", 0)
		waitHeld(t, rc, "b", "alice", 0)
	}
	if rec.reservations[metrics.ClusterReserved] != 30 || rec.reservations[metrics.ClusterReserveRefused] != 60 {
		t.Errorf("reservations recorded: %v, want 30 reserved and 60 refused", rec.reservations)
	}
}

// TestDeadInstanceSlotsVanish: an instance that holds a user's whole cap and
// stops reporting (killed) stops counting once it is no longer live.
func TestDeadInstanceSlotsVanish(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL(), "a", nil), newNode(t, srv.URL(), "b", nil)
	ctx := context.Background()
	exchangeOK(t, a, Report{})
	exchangeOK(t, b, Report{})
	if got := reserveAll([]*Node{b}, "alice", 4, 4); sum(got) != 4 {
		t.Fatalf("b got %v of 4", got)
	}
	if a.Slots().Reserve(ctx, "alice", 4) {
		t.Fatal("a reserved a fifth slot while b, live, holds 4")
	}
	time.Sleep(liveFor + Period) // b is dead: no more exchanges
	exchangeOK(t, a, Report{})
	if got := reserveAll([]*Node{a}, "alice", 4, 4); sum(got) != 4 {
		t.Errorf("after b died a got %v of alice's 4 slots, want all", got)
	}
}

// TestRedisRestartRewritesSlots: Redis restarted empty has the slots an
// instance holds written back at its next exchange, so another instance's
// reservations count them again.
func TestRedisRestartRewritesSlots(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL(), "a", nil), newNode(t, srv.URL(), "b", nil)
	runSlots(t, a)
	ctx := context.Background()
	exchangeOK(t, a, Report{})
	exchangeOK(t, b, Report{})
	if got := reserveAll([]*Node{a}, "alice", 3, 4); sum(got) != 3 {
		t.Fatalf("a got %v of 3", got)
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for !a.Exchange(ctx, Report{}).Connected && time.Now().Before(deadline) {
		time.Sleep(Period)
	}
	exchangeOK(t, b, Report{})
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rc.Close()
	waitHeld(t, rc, "a", "alice", 3)
	if got := reserveAll([]*Node{b}, "alice", 3, 4); sum(got) != 1 {
		t.Errorf("after Redis restarted empty b got %v of alice's slots, want the 1 a does not hold", got)
	}
}

// TestRestartedInstanceDropsItsOldSlots: an instance restarted under the same
// name (a new Node) replaces what its previous run held, at its first
// exchange: the old run's sessions are gone with it.
func TestRestartedInstanceDropsItsOldSlots(t *testing.T) {
	srv := redistest.Start(t)
	old, b := newNode(t, srv.URL(), "a", nil), newNode(t, srv.URL(), "b", nil)
	exchangeOK(t, old, Report{})
	exchangeOK(t, b, Report{})
	if got := reserveAll([]*Node{old}, "alice", 4, 4); sum(got) != 4 {
		t.Fatalf("the first run got %v of 4", got)
	}
	a := newNode(t, srv.URL(), "a", nil)
	runSlots(t, a)
	exchangeOK(t, a, Report{})
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rc.Close()
	waitHeld(t, rc, "a", "alice", 0)
	if got := reserveAll([]*Node{b}, "alice", 4, 4); sum(got) != 4 {
		t.Errorf("b got %v of alice's 4 slots after a restarted, want all", got)
	}
}

// BenchmarkReserveRelease: what a session's open and close cost an instance of
// a cluster of two: one reservation (a script's round trip to a local Redis)
// and one release (written by the background loop).
func BenchmarkReserveRelease(b *testing.B) {
	srv := redistest.Start(b)
	nodes := make([]*Node, 2)
	for i, name := range []string{"a", "b"} {
		n, err := New(Options{URL: srv.URL(), Name: name})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close() })
		for !n.Exchange(context.Background(), Report{}).Connected {
			time.Sleep(Period / 5)
		}
		nodes[i] = n
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go nodes[0].slots.run(ctx)
	s := nodes[0].Slots()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		user := "user" + strconv.Itoa(i%2000)
		if !s.Reserve(ctx, user, 10) {
			b.Fatal("refused")
		}
		s.Release(user)
	}
}

// TestReserveCampusBurst: 150 users each open 6 sessions at once, 3 on each of
// two instances, against a cap of 3: every user gets exactly 3, with 900
// reservations in flight together. (A batch Redis does not answer within
// reserveTimeout, which a machine busy enough can cause, is decided on the
// local share, and the failure says so.)
func TestReserveCampusBurst(t *testing.T) {
	srv := redistest.Start(t)
	rec := &countingRecorder{}
	a, b := newNode(t, srv.URL(), "a", rec), newNode(t, srv.URL(), "b", rec)
	exchangeOK(t, a, Report{})
	exchangeOK(t, b, Report{})
	exchangeOK(t, a, Report{}) // each knows the other
	const users, each, limit = 150, 6, 3
	granted := make([]atomic.Int32, users)
	var wg sync.WaitGroup
	start := time.Now()
	for u := range users {
		for i := range each {
			wg.Go(func() {
				if []*Node{a, b}[i%2].Slots().Reserve(context.Background(), "user"+strconv.Itoa(u), limit) {
					granted[u].Add(1)
				}
			})
		}
	}
	wg.Wait()
	t.Logf("%d reservations in %v: %v", users*each, time.Since(start), rec.reservations)
	for u := range granted {
		if n := granted[u].Load(); n != limit {
			t.Errorf("user%d got %d slots, want %d (reservations: %v)", u, n, limit, rec.reservations)
		}
	}
}

// BenchmarkReserveReleaseParallel is BenchmarkReserveRelease with sessions
// opening on every core at once: their reservations share batches.
func BenchmarkReserveReleaseParallel(b *testing.B) {
	srv := redistest.Start(b)
	n, err := New(Options{URL: srv.URL(), Name: "a"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	for !n.Exchange(context.Background(), Report{}).Connected {
		time.Sleep(Period / 5)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.slots.run(ctx)
	var next atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			user := "user" + strconv.Itoa(int(next.Add(1)%2000))
			if !n.Slots().Reserve(ctx, user, 1000) {
				b.Error("refused")
				return
			}
			n.Slots().Release(user)
		}
	})
}
