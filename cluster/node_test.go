package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/internal/redistest"
)

// countingRecorder counts exchanges by outcome, bad values by reason and
// reservations by result.
type countingRecorder struct {
	mu           sync.Mutex
	ok, fails    int
	peers        int
	bad          map[string]int
	reservations map[string]int
}

func (r *countingRecorder) ClusterBadReport(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bad == nil {
		r.bad = map[string]int{}
	}
	r.bad[reason]++
}

func (r *countingRecorder) ClusterReservation(result string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reservations == nil {
		r.reservations = map[string]int{}
	}
	r.reservations[result]++
}

func (r *countingRecorder) badCount(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad[reason]
}

func (r *countingRecorder) ClusterExchange(ok bool, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok {
		r.ok++
	} else {
		r.fails++
	}
}

func (r *countingRecorder) ClusterOutage() {}

func (r *countingRecorder) ClusterPeers(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.peers = n
}

func newNode(t *testing.T, url, name string, rec Recorder) *Node {
	t.Helper()
	n, err := New(Options{URL: url, Name: name, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestExchangeThroughRedis: two instances see each other's reports through a
// real Redis; when Redis goes away they keep the last view, marked
// disconnected, and they rejoin when it comes back, with nothing restored.
func TestExchangeThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	rec := &countingRecorder{}
	a, b := newNode(t, srv.URL(), "a", rec), newNode(t, srv.URL(), "b", nil)
	ctx := context.Background()
	ra := Report{Buckets: map[string]Demand{"user:alice:d": {Used: 1000, Waiting: true, Sessions: 3}}}
	rb := Report{Buckets: map[string]Demand{"user:alice:d": {Used: 500, Sessions: 1}}}
	a.Exchange(ctx, ra)
	vb := b.Exchange(ctx, rb)
	va := a.Exchange(ctx, ra)
	if !va.Connected || va.Peers != 2 || va.Others["b"].Buckets["user:alice:d"] != rb.Buckets["user:alice:d"] {
		t.Fatalf("a's view: %+v", va)
	}
	if vb.Peers != 2 || vb.Others["a"].Buckets["user:alice:d"].Sessions != 3 {
		t.Fatalf("b's view: %+v", vb)
	}

	srv.Stop()
	start := time.Now()
	down := a.Exchange(ctx, ra)
	if down.Connected || down.Peers != 2 {
		t.Fatalf("view without Redis: %+v, want the last one, disconnected", down)
	}
	if d := time.Since(start); d > 2*Period {
		t.Errorf("an exchange without Redis took %v, want at most %v", d, 2*Period)
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for v := a.Exchange(ctx, ra); !v.Connected; v = a.Exchange(ctx, ra) {
		if time.Now().After(deadline) {
			t.Fatal("a did not rejoin after Redis came back")
		}
		time.Sleep(Period)
	}
	b.Exchange(ctx, rb)
	if v := a.Exchange(ctx, ra); v.Peers != 2 {
		t.Errorf("after the restart a sees %d instances, want 2", v.Peers)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.ok == 0 || rec.fails == 0 || rec.peers != 2 {
		t.Errorf("recorded %d ok and %d failed exchanges, %d peers", rec.ok, rec.fails, rec.peers)
	}
}

// TestExpiredInstanceLeaves: an instance that stops reporting leaves the others'
// views within liveFor.
func TestExpiredInstanceLeaves(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL(), "a", nil), newNode(t, srv.URL(), "b", nil)
	ctx := context.Background()
	b.Exchange(ctx, Report{})
	if v := a.Exchange(ctx, Report{}); v.Peers != 2 {
		t.Fatalf("a sees %d instances, want 2", v.Peers)
	}
	time.Sleep(liveFor + Period)
	if v := a.Exchange(ctx, Report{}); v.Peers != 1 {
		t.Errorf("a still sees %d instances after b stopped reporting", v.Peers)
	}
}

// TestUsageTotalsAcrossInstances: two instances' counts of one user add up in
// Redis, and totals Redis lost (restarted empty) come back from what the
// instances knew.
func TestUsageTotalsAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL(), "a", nil), newNode(t, srv.URL(), "b", nil)
	ctx := context.Background()
	rep := func(added, known [2]int64) Report {
		return Report{Usage: &Usage{Day: "2026-11-25", Month: "2026-11", Users: []UserUsage{
			{User: "alice", Added: added, DayKnown: known, MonthKnown: known}}}}
	}
	a.Exchange(ctx, rep([2]int64{100, 1000}, [2]int64{}))
	v := b.Exchange(ctx, rep([2]int64{10, 20}, [2]int64{}))
	if got := v.Usage.Users["alice"]; got.Day != [2]int64{110, 1020} || got.Month != [2]int64{110, 1020} {
		t.Fatalf("alice's totals after both instances: %+v, want 110 up and 1020 down", got)
	}
	srv.Restart() // empty: persistence off
	for v = a.Exchange(ctx, rep([2]int64{1, 1}, [2]int64{110, 1020})); !v.Connected; v = a.Exchange(ctx, rep([2]int64{}, [2]int64{110, 1020})) {
		time.Sleep(Period)
	}
	if got := v.Usage.Users["alice"]; got.Day[1] < 1020 {
		t.Errorf("totals after Redis restarted empty: %+v, want at least what the instance knew", got)
	}
}

// exchangeOK exchanges r until an exchange works (the first may take longer
// than a period on a busy machine: it dials) and returns its view.
func exchangeOK(t *testing.T, n *Node, r Report) View {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := n.Exchange(context.Background(), r)
		if v.Connected {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no exchange with Redis worked in 5 s", n.Name())
		}
		time.Sleep(Period / 5)
	}
}

// TestPasswordFile: against a Redis that requires a password, a node with the
// password in its PasswordFile (trimmed of its newline) exchanges; one with a
// wrong password or none is in an outage, whatever its pipeline held (a
// refused AUTH fails the pipeline but none of its commands); an unreadable
// file is an error from New that names the key.
func TestPasswordFile(t *testing.T) {
	srv := redistest.StartConfig(t, "requirepass s3cret-pass\n")
	dir := t.TempDir()
	secret := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	node := func(name, file string) *Node {
		n, err := New(Options{URL: srv.URL(), Name: name, PasswordFile: file})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	good := node("good", secret("good", "s3cret-pass\n"))
	exchangeOK(t, good, Report{})
	usage := &Usage{Day: "2026-11-25", Month: "2026-11", Users: []UserUsage{{User: "alice", Added: [2]int64{1, 1}}}}
	for _, n := range []*Node{node("wrong", secret("wrong", "guess\n")), node("none", "")} {
		for _, r := range []Report{{}, {Usage: usage}} {
			if v := n.Exchange(context.Background(), r); v.Connected {
				t.Errorf("%s (usage %v): connected without the password", n.Name(), r.Usage != nil)
			}
		}
	}
	if _, err := New(Options{URL: srv.URL(), Name: "x", PasswordFile: filepath.Join(dir, "missing")}); err == nil ||
		!strings.Contains(err.Error(), "cluster.redis_password_file") {
		t.Errorf("a missing password file: %v, want an error naming cluster.redis_password_file", err)
	}
}

// TestNameBoundAgreesWithConfig: the longest cluster.name the config accepts is
// the longest name a node takes (and its peers read).
func TestNameBoundAgreesWithConfig(t *testing.T) {
	for _, size := range []int{MaxNameLen, MaxNameLen + 1} {
		name := strings.Repeat("a", size)
		_, cfgErr := configs.Parse([]byte(`cluster: {redis: "redis://127.0.0.1:1/0", name: "`+name+`"}`), "test.yaml")
		n, nodeErr := New(Options{URL: "redis://127.0.0.1:1/0", Name: name})
		if nodeErr == nil {
			n.Close()
		}
		if (cfgErr == nil) != (nodeErr == nil) {
			t.Errorf("a name of %d bytes: config %v, node %v", size, cfgErr, nodeErr)
		}
	}
}
