package shaping

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sockshaper/sockshaper/cluster"
	"github.com/sockshaper/sockshaper/configs"
)

// instances simulates instances of one cluster, each with its own Registry,
// exchanging reports every cluster.Period as the cluster package does; connected
// false stands for Redis being unreachable.
type instances struct {
	names     []string
	regs      map[string]*Registry
	user      map[string]string // whose sessions run on each instance; "u" when not set
	connected atomic.Bool
}

func newInstances(limit int64, names ...string) *instances {
	return newInstancesOf(oneGroup(configs.Rate(limit)), names...)
}

// newInstancesOf is newInstances with every instance on cfg.
func newInstancesOf(cfg configs.Shaping, names ...string) *instances {
	in := &instances{names: names, regs: map[string]*Registry{}, user: map[string]string{}}
	for _, n := range names {
		in.regs[n] = NewRegistry(cfg)
	}
	in.connected.Store(true)
	return in
}

// exchange runs one period's reports and applies them.
func (in *instances) exchange() {
	reps := map[string]cluster.Report{}
	for _, n := range in.names {
		reps[n] = in.regs[n].Report()
	}
	for _, n := range in.names {
		v := cluster.View{Connected: in.connected.Load(), Peers: len(in.names), Others: map[string]cluster.Report{}}
		for _, o := range in.names {
			if o != n {
				v.Others[o] = reps[o]
			}
		}
		in.regs[n].Apply(n, v)
	}
}

// run runs sessions[name] unpaced downloads of user[name] on each instance for d,
// exchanging every period, and returns the bytes each instance moved in the
// last half of d.
func (in *instances) run(sessions map[string]int, d time.Duration) map[string]int64 {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	moved := map[string]*atomic.Int64{}
	var wg sync.WaitGroup
	for name, n := range sessions {
		moved[name] = &atomic.Int64{}
		for range n {
			user := in.user[name]
			if user == "" {
				user = "u"
			}
			l := in.regs[name].Acquire(Who{User: user}, Other)
			wg.Go(func() {
				defer l.Release()
				Copy(ctx, io.Discard, endless{}, l.Download(), func(n int, _ time.Duration) {
					if time.Since(start) >= d/2 {
						moved[name].Add(int64(n))
					}
				})
			})
		}
	}
	wg.Go(func() {
		t := time.NewTicker(cluster.Period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				in.exchange()
			}
		}
	})
	wg.Wait()
	out := map[string]int64{}
	for name, m := range moved {
		out[name] = m.Load()
	}
	return out
}

// TestSharedLimitAcrossInstances: one user's limit holds across two instances
// that exchange their demand, the split follows their sessions, one instance
// alone gets all of it, and without the exchange each falls back to half.
func TestSharedLimitAcrossInstances(t *testing.T) {
	const limit = 1 << 20
	tests := []struct {
		name      string
		sessions  map[string]int
		connected bool
		total     float64            // B/s, within 10%
		each      map[string]float64 // B/s, within 15%
	}{
		{"3 and 1 sessions", map[string]int{"a": 3, "b": 1}, true, limit, map[string]float64{"a": 0.75 * limit, "b": 0.25 * limit}},
		{"all on one instance", map[string]int{"a": 2, "b": 0}, true, limit, map[string]float64{"a": limit}},
		{"redis unreachable", map[string]int{"a": 3, "b": 1}, false, limit, map[string]float64{"a": limit / 2, "b": limit / 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const d = 10 * time.Second
				in := newInstances(limit, "a", "b")
				in.connected.Store(tc.connected)
				got := in.run(tc.sessions, d)
				secs := (d / 2).Seconds()
				var total float64
				for _, n := range got {
					total += float64(n) / secs
				}
				if total < 0.9*tc.total || total > 1.1*tc.total {
					t.Errorf("instances together: %.0f B/s, want %.0f (±10%%); each %v", total, tc.total, got)
				}
				t.Logf("moved in the last %v: %v", d/2, got)
				for name, want := range tc.each {
					if r := float64(got[name]) / secs; r < 0.85*want || r > 1.15*want {
						t.Errorf("%s: %.0f B/s, want %.0f (±15%%)", name, r, want)
					}
				}
			})
		})
	}
}

// TestSharedBucketAcrossInstancesByUser: a global limit shared by two
// instances is split between them by users, not sessions, as each instance
// shares it between users: a user with 10 sessions on one instance and a user
// with one on the other get about half each. Before, the split followed the
// sessions (10 to 1).
func TestSharedBucketAcrossInstancesByUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit, d = 1 << 20, 10 * time.Second
		in := newInstancesOf(configs.Shaping{Global: configs.Limit{Download: limit}}, "a", "b")
		in.user["a"], in.user["b"] = "heavy", "light"
		got := in.run(map[string]int{"a": 10, "b": 1}, d)
		t.Logf("moved in the last %v: %v", d/2, got)
		secs := (d / 2).Seconds()
		for _, name := range in.names {
			if r := float64(got[name]) / secs; r < 0.85*limit/2 || r > 1.15*limit/2 {
				t.Errorf("%s (%s): %.0f B/s, want half of %d (±15%%)", name, in.user[name], r, limit)
			}
		}
	})
}
