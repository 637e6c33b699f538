package shaping

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/sockshaper/sockshaper/configs"
)

func ratePtr(r configs.Rate) *configs.Rate         { return &r }
func sizePtr(b configs.ByteSize) *configs.ByteSize { return &b }

// mustWindow parses a window as validation does.
func mustWindow(t *testing.T, days, hours string) configs.Window {
	t.Helper()
	w := configs.Window{Days: days, Hours: hours, Location: time.UTC}
	var err error
	if w.Weekdays, err = configs.ParseDays(days); err != nil {
		t.Fatal(err)
	}
	if w.Spans, err = configs.ParseHours(hours); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWindowPrecedence checks the documented rule for overlapping windows: the
// fields an open window sets replace the level's, and where several open windows
// set a field the most restrictive wins (0, unlimited, counting as the highest).
func TestWindowPrecedence(t *testing.T) {
	base := configs.Limit{Upload: 4 * mib, Download: 16 * mib, Burst: 256 * kib}
	during := map[string]configs.WindowLimit{
		"lectures": {Download: ratePtr(2 * mib)},
		"exams":    {Download: ratePtr(1 * mib), Upload: ratePtr(0)},
		"nights":   {Download: ratePtr(0), Burst: sizePtr(mib)},
		"lab":      {Upload: ratePtr(512 * kib)},
	}
	lookup := func(w string) (configs.WindowLimit, bool) { l, ok := during[w]; return l, ok }
	for _, tc := range []struct {
		open []string
		want configs.Limit
	}{
		{nil, base},
		{[]string{"unknown"}, base},
		{[]string{"lectures"}, configs.Limit{Upload: 4 * mib, Download: 2 * mib, Burst: 256 * kib}},
		{[]string{"exams", "lectures"}, configs.Limit{Upload: 0, Download: mib, Burst: 256 * kib}},
		{[]string{"lectures", "exams"}, configs.Limit{Upload: 0, Download: mib, Burst: 256 * kib}},
		{[]string{"nights"}, configs.Limit{Upload: 4 * mib, Download: 0, Burst: mib}},
		{[]string{"lectures", "nights"}, configs.Limit{Upload: 4 * mib, Download: 2 * mib, Burst: mib}},
		{[]string{"exams", "lab"}, configs.Limit{Upload: 512 * kib, Download: mib, Burst: 256 * kib}},
	} {
		if got := windowed(base, tc.open, lookup); !sameRates(got, tc.want) {
			t.Errorf("open %v: %+v, want %+v", tc.open, got, tc.want)
		}
	}
}

// sameRates compares the rates and bursts of two limits.
func sameRates(a, b configs.Limit) bool {
	return a.Upload == b.Upload && a.Download == b.Download && a.Burst == b.Burst
}

func TestCapped(t *testing.T) {
	for _, tc := range []struct {
		in, want configs.Limit
	}{
		{configs.Limit{}, configs.Limit{Upload: 32 * kib, Download: 32 * kib}},
		{configs.Limit{Upload: 4 * mib, Download: 16 * mib, Burst: mib}, configs.Limit{Upload: 32 * kib, Download: 32 * kib}},
		{configs.Limit{Upload: 8 * kib, Download: 8 * kib, Burst: 4 * kib}, configs.Limit{Upload: 8 * kib, Download: 8 * kib, Burst: 4 * kib}},
		{configs.Limit{Upload: 8 * kib, Download: mib, Burst: 4 * kib}, configs.Limit{Upload: 8 * kib, Download: 32 * kib}},
	} {
		if got := capped(tc.in, 32*kib); !sameRates(got, tc.want) {
			t.Errorf("capped(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// windowCampus is campus() with a skype per-user download limit of 256 KiB/s
// that drops to 64 KiB/s while "lecture" is open, Saturdays from 00:01 to 00:02
// UTC: synctest's clock starts on Saturday 1 January 2000 at midnight UTC.
func windowCampus(t *testing.T) configs.Shaping {
	cfg := campus()
	cfg.Windows = map[string]configs.Window{"lecture": mustWindow(t, "sat", "00:01-00:02")}
	skype := cfg.Apps["skype"]
	skype.During = map[string]configs.AppWindow{"lecture": {PerUser: configs.WindowLimit{Download: ratePtr(64 * kib)}}}
	cfg.Apps = map[string]configs.AppLimits{"skype": skype}
	students := cfg.Groups["students"]
	students.During = map[string]configs.WindowLimit{"lecture": {Upload: ratePtr(0)}}
	cfg.Groups = map[string]configs.Limit{"students": students, "staff": cfg.Groups["staff"]}
	return cfg
}

// TestWindowEdgeChangesLiveBuckets follows one live lease across a window's
// opening and closing: the same buckets change rate in place, within a second of
// each edge, and the session's bytes keep flowing at the rate in force.
func TestWindowEdgeChangesLiveBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(windowCampus(t))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		l := r.Acquire(Who{User: "bob"}, "skype")
		perApp := l.chains[download].buckets[1]

		var moved atomic.Int64 // bytes the session's download chain let through
		go func() {
			for ctx.Err() == nil {
				if _, err := l.Download().Wait(ctx, 1024); err == nil {
					moved.Add(1024)
				}
			}
		}()
		rateOver := func(d time.Duration) float64 {
			start := moved.Load()
			time.Sleep(d)
			return float64(moved.Load()-start) / d.Seconds()
		}
		check := func(when string, wantApp, wantUp rate.Limit, got float64) {
			t.Helper()
			if a, u := limitOf(l, download, 1), limitOf(l, upload, 0); a != wantApp || u != wantUp {
				t.Errorf("%s: skype per-user download %v, user upload %v; want %v and %v", when, a, u, wantApp, wantUp)
			}
			if got < 0.95*float64(wantApp) || got > 1.05*float64(wantApp) {
				t.Errorf("%s: session moved %.0f B/s, want %v (±5%%)", when, got, wantApp)
			}
		}
		check("before the window", 256*kib, 512*kib, rateOver(50*time.Second)) // to 00:00:50
		time.Sleep(11 * time.Second)                                           // 00:01:01: the window opened within a second
		check("inside the window", 64*kib, 0, rateOver(45*time.Second))        // to 00:01:46
		time.Sleep(15 * time.Second)                                           // 00:02:01: closed again
		check("after the window", 256*kib, 512*kib, rateOver(30*time.Second))
		if l.chains[download].buckets[1] != perApp {
			t.Error("the window replaced the lease's bucket instead of changing it in place")
		}
		if got := r.OpenWindows(); len(got) != 0 {
			t.Errorf("OpenWindows() = %v after the window closed", got)
		}
		l.Release()
		cancel()
		<-done
	})
}

// TestWindowAtAcquireAndUpdate checks that buckets made while a window is open
// get its limits, and that a reload keeps applying open windows.
func TestWindowAtAcquireAndUpdate(t *testing.T) {
	at := time.Date(2000, 1, 1, 0, 1, 30, 0, time.UTC) // inside "lecture"
	r := NewRegistry(windowCampus(t), WithClock(func() time.Time { return at }))
	l := r.Acquire(Who{User: "bob"}, "skype")
	defer l.Release()
	if got := limitOf(l, download, 1); got != 64*kib {
		t.Errorf("skype per-user download acquired inside the window = %v, want 64 KiB/s", got)
	}
	cfg := windowCampus(t)
	skype := cfg.Apps["skype"]
	skype.During["lecture"] = configs.AppWindow{PerUser: configs.WindowLimit{Download: ratePtr(32 * kib)}}
	r.Update(cfg)
	if got := limitOf(l, download, 1); got != 32*kib {
		t.Errorf("after a reload inside the window: %v, want 32 KiB/s", got)
	}
	if open, changed := r.Tick(at.Add(time.Minute)); changed != true || len(open) != 0 || limitOf(l, download, 1) != 256*kib {
		t.Errorf("Tick past the window: open %v changed %v rate %v; want none, true, 256 KiB/s", open, changed, limitOf(l, download, 1))
	}
	if _, changed := r.Tick(at.Add(2 * time.Minute)); changed {
		t.Error("Tick with no edge reported a change")
	}
}

// overQuota is a QuotaState of a fixed set of users over quota.
type overQuota struct {
	mu   sync.Mutex
	over map[string]configs.Rate
}

func (q *overQuota) OverRate(user string) (configs.Rate, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	r, ok := q.over[user]
	return r, ok
}

func (q *overQuota) set(user string, r configs.Rate, over bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if over {
		q.over[user] = r
	} else {
		delete(q.over, user)
	}
}

func TestRefreshUserOverQuota(t *testing.T) {
	q := &overQuota{over: map[string]configs.Rate{"carol": 16 * kib}}
	r := NewRegistry(campus(), WithQuota(q))
	carol, bob := r.Acquire(Who{User: "carol"}, "web"), r.Acquire(Who{User: "bob"}, "web")
	defer carol.Release()
	defer bob.Release()
	if up, down := limitOf(carol, upload, 0), limitOf(carol, download, 0); up != 16*kib || down != 16*kib {
		t.Errorf("carol over quota at acquire: %v up, %v down; want 16 KiB/s each", up, down)
	}
	own := bob.chains[download].buckets[0]
	q.set("bob", 32*kib, true)
	r.RefreshUser("bob")
	if got := limitOf(bob, download, 0); got != 32*kib || bob.chains[download].buckets[0] != own {
		t.Errorf("bob after going over: %v (same bucket %v), want 32 KiB/s in place", got, bob.chains[download].buckets[0] == own)
	}
	q.set("bob", 0, false)
	r.RefreshUser("bob")
	if got := limitOf(bob, download, 0); got != 2*mib {
		t.Errorf("bob back under quota: %v, want his group's 2 MiB/s", got)
	}
	q.set("carol", 0, true) // a refusing quota does not shape: the sessions are cut instead
	r.RefreshUser("carol")
	if got := limitOf(carol, download, 0); got != 2*mib {
		t.Errorf("carol over a refusing quota: %v, want the group's 2 MiB/s", got)
	}
	r.RefreshUser("nobody") // not in the registry: nothing to do
}

// TestRegistryWindowsConcurrent runs window edges, quota refreshes, reloads and
// sessions at once, for the race detector.
func TestRegistryWindowsConcurrent(t *testing.T) {
	q := &overQuota{over: map[string]configs.Rate{}}
	cfg := windowCampus(t)
	r := NewRegistry(cfg, WithQuota(q))
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				user := userName(j % 5)
				l := r.Acquire(Who{User: user}, []string{"web", "skype"}[j%2])
				l.Download().Allow(100)
				q.set(user, 8*kib, j%3 == 0)
				r.RefreshUser(user)
				l.Release()
				if i == 0 {
					r.Tick(start.Add(time.Duration(j) * time.Second))
				}
				if i == 1 && j%50 == 0 {
					r.Update(windowCampus(t))
				}
			}
		})
	}
	wg.Wait()
}
