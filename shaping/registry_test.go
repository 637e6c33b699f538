package shaping

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"golang.org/x/time/rate"
)

// campus is a config in the shape of the default one, in bytes per second.
func campus() configs.Shaping {
	return configs.Shaping{
		DefaultGroup: "students",
		Groups: map[string]configs.Limit{
			"students": {Upload: 512 * kib, Download: 2 * mib, Burst: 256 * kib},
			"staff":    {Upload: 2 * mib, Download: 12 * mib},
		},
		Members: map[string]string{"alice": "staff", "ghost": "nosuchgroup"},
		Apps: map[string]configs.AppLimits{
			"skype": {PerUser: configs.Limit{Upload: 128 * kib, Download: 256 * kib}, Total: configs.Limit{Download: 60 * mib}},
		},
		Global:       configs.Limit{Upload: 125 * mib, Download: 125 * mib},
		IdleEviction: 10 * time.Minute,
	}
}

// limitOf returns the rate of the bucket at level on l's chain of direction d,
// 0 when unlimited.
func limitOf(l *Lease, d, level int) rate.Limit {
	if lim := l.chains[d].buckets[level].limiter(); lim != nil {
		return lim.Limit()
	}
	return 0
}

func TestRegistryLevels(t *testing.T) {
	r := NewRegistry(campus())
	tests := []struct {
		user, app           string
		userUp, userDown    rate.Limit
		perAppDown, totDown rate.Limit
	}{
		{"bob", "web", 512 * kib, 2 * mib, 0, 0},
		{"alice", "web", 2 * mib, 12 * mib, 0, 0},
		{"alice", "skype", 2 * mib, 12 * mib, 256 * kib, 60 * mib},
		{"", "skype", 512 * kib, 2 * mib, 256 * kib, 60 * mib}, // anonymous: the default group
		{"ghost", "web", 0, 0, 0, 0},                           // an undefined group limits nothing
	}
	for _, tc := range tests {
		l := r.Acquire(Who{User: tc.user}, tc.app)
		got := [...]rate.Limit{limitOf(l, upload, 0), limitOf(l, download, 0), limitOf(l, download, 1), limitOf(l, download, 2), limitOf(l, download, 3)}
		want := [...]rate.Limit{tc.userUp, tc.userDown, tc.perAppDown, tc.totDown, 125 * mib}
		if got != want {
			t.Errorf("Acquire(%q, %q) rates = %v, want %v", tc.user, tc.app, got, want)
		}
		l.Release()
	}
	if got := NewRegistry(configs.Shaping{}).Acquire(Who{User: "bob"}, "web"); !got.Unshaped() {
		t.Error("no limits configured, lease not unshaped")
	}
}

// TestRegistrySharing checks which buckets sessions share: a user's own across
// their sessions and apps, the app total and global across users.
func TestRegistrySharing(t *testing.T) {
	r := NewRegistry(campus())
	a1, a2, b := r.Acquire(Who{User: "bob"}, "skype"), r.Acquire(Who{User: "bob"}, "web"), r.Acquire(Who{User: "carol"}, "skype")
	a3 := r.Acquire(Who{User: "bob"}, "skype")
	for _, d := range []int{upload, download} {
		ab, bb, cb := a1.chains[d].buckets, a2.chains[d].buckets, b.chains[d].buckets
		switch {
		case ab[0] != bb[0] || ab[0] == cb[0]:
			t.Error("user bucket not shared by one user's sessions only")
		case ab[1] == bb[1] || ab[1] == cb[1] || ab[1] != a3.chains[d].buckets[1]:
			t.Error("user×app bucket wrongly shared")
		case ab[2] != cb[2] || ab[2] == bb[2]:
			t.Error("app total not shared across users")
		case ab[3] != bb[3] || ab[3] != cb[3]:
			t.Error("global not shared")
		}
	}
	if a1.Upload() == a1.Download() || a1.Upload() != &a1.chains[upload] {
		t.Error("Upload and Download chains mixed up")
	}
}

func TestLeaseUnshaped(t *testing.T) {
	tests := []struct {
		name string
		cfg  configs.Shaping
		want bool
	}{
		{"nothing", configs.Shaping{}, true},
		{"group without rates", configs.Shaping{DefaultGroup: "g", Groups: map[string]configs.Limit{"g": {Burst: 1}}}, true},
		{"other app limited", configs.Shaping{Apps: map[string]configs.AppLimits{"skype": {PerUser: configs.Limit{Upload: 1}}}}, true},
		{"upload only", configs.Shaping{DefaultGroup: "g", Groups: map[string]configs.Limit{"g": {Upload: 1}}}, false},
		{"app total", configs.Shaping{Apps: map[string]configs.AppLimits{"web": {Total: configs.Limit{Download: 1}}}}, false},
		{"global", configs.Shaping{Global: configs.Limit{Download: 1}}, false},
	}
	for _, tc := range tests {
		if got := NewRegistry(tc.cfg).Acquire(Who{User: "bob"}, "web").Unshaped(); got != tc.want {
			t.Errorf("%s: Unshaped() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRegistryUpdateLive changes a live session's limits twice, a group's rate
// and then the user's group, and checks that each applies from the next chunk.
func TestRegistryUpdateLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := campus()
		r := NewRegistry(cfg)
		l := r.Acquire(Who{User: "bob"}, "web")
		var n counter
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		go Copy(ctx, &n, endless{}, l.Download(), nil)

		time.Sleep(5 * time.Second)
		within(t, "bytes at 2 MiB/s in 5 s", n.take(), 10*mib, 0.03)

		cfg.Groups = map[string]configs.Limit{"students": {Download: 4 * mib}, "staff": {Download: mib}}
		r.Update(cfg)
		time.Sleep(5 * time.Second)
		within(t, "bytes after the group went to 4 MiB/s", n.take(), 20*mib, 0.03)

		cfg.Members = map[string]string{"bob": "staff"}
		r.Update(cfg)
		time.Sleep(5 * time.Second)
		within(t, "bytes after bob moved to staff at 1 MiB/s", n.take(), 5*mib, 0.03)
	})
}

// TestRegistryUpdateTurnsOn checks that a lease acquired while unlimited is
// shaped once a reload sets limits: its buckets were kept on the chain.
func TestRegistryUpdateTurnsOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(configs.Shaping{})
		l := r.Acquire(Who{User: "bob"}, "skype")
		if !l.Unshaped() {
			t.Fatal("lease shaped without limits")
		}
		for name, cfg := range map[string]configs.Shaping{
			"group":        {DefaultGroup: "g", Groups: map[string]configs.Limit{"g": {Download: mib}}},
			"app per user": {Apps: map[string]configs.AppLimits{"skype": {PerUser: configs.Limit{Download: mib}}}},
			"app total":    {Apps: map[string]configs.AppLimits{"skype": {Total: configs.Limit{Download: mib}}}},
			"global":       {Global: configs.Limit{Download: mib}},
		} {
			r.Update(cfg)
			within(t, name+": bytes in 10 s", copyFor(t, l.Download(), 10*time.Second), 10*mib, 0.02)
			r.Update(configs.Shaping{})
		}
	})
}

func TestActiveUsersAndRelease(t *testing.T) {
	r := NewRegistry(campus())
	a1, a2, b := r.Acquire(Who{User: "alice"}, "web"), r.Acquire(Who{User: "alice"}, "skype"), r.Acquire(Who{User: "bob"}, "web")
	steps := []struct {
		do   func()
		want int
	}{
		{func() {}, 2},
		{a1.Release, 2},
		{a1.Release, 2}, // idempotent: alice still has a2
		{a2.Release, 1},
		{b.Release, 0},
		{b.Release, 0},
	}
	for i, s := range steps {
		s.do()
		if got := r.ActiveUsers(); got != s.want {
			t.Errorf("step %d: ActiveUsers() = %d, want %d", i, got, s.want)
		}
	}
	if got := r.Users(); got != 2 {
		t.Errorf("Users() before eviction = %d, want 2", got)
	}
}

// counter is a writer that counts bytes, safe to read from another goroutine.
type counter struct {
	mu sync.Mutex
	n  int64
}

func (c *counter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.n += int64(len(p))
	c.mu.Unlock()
	return len(p), nil
}

// take returns the bytes counted since the last take.
func (c *counter) take() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = 0
	return n
}

func userName(i int) string { return fmt.Sprintf("user%06d", i) }

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// bucketOf returns the bucket of direction dir keyed by level, user and app.
func (r *Registry) bucketOf(lv int, user, app string, dir int) *bucket {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buckets[levelKey{level: lv, user: user, app: app}].pair[dir]
}
