package usage

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// clock is a settable clock for a Store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(s string) *clock {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &clock{t: t}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
	return t
}

func (c *clock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// events records what a Store reports to OnQuota.
type events struct {
	mu  sync.Mutex
	got []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) take() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	got := e.got
	e.got = nil
	return got
}

// quotaConfig has students with daily 1000 B and monthly 5000 B held to 100 B/s
// over it, staff with a refusing daily 1000 B, and users alice (staff), carol
// (staff, her own monthly 3000 B) and dave (exempt).
func quotaConfig(t *testing.T, stateDir string) *configs.Config {
	t.Helper()
	cfg := configs.Defaults()
	cfg.StateDir = stateDir
	cfg.Shaping = configs.Shaping{
		DefaultGroup: "students",
		Groups: map[string]configs.Limit{
			"students": {Download: 1 << 20, Quota: &configs.Quota{Daily: 1000, Monthly: 5000, OverRate: 100}},
			"staff":    {Quota: &configs.Quota{Daily: 1000}},
		},
		Members:      map[string]string{"alice": "staff", "carol": "staff"},
		UserQuotas:   map[string]configs.Quota{"carol": {Monthly: 3000, OverRate: 50}, "dave": {}},
		IdleEviction: time.Minute,
	}
	if stateDir == "" {
		cfg.Shaping.Groups["students"].Quota.Daily = 1000 // validation wants a state_dir; the test does not
	}
	return &cfg
}

func newStore(t *testing.T, cfg *configs.Config, c *clock, ev *events) *Store {
	t.Helper()
	opts := Options{Now: c.Now}
	if ev != nil {
		opts.OnQuota = ev.add
	}
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func userReport(t *testing.T, s *Store, user string) UserReport {
	t.Helper()
	for _, u := range s.Report(s.now(), true).Users {
		if u.User == user {
			return u
		}
	}
	t.Fatalf("%s not in the report", user)
	return UserReport{}
}

func TestPeriods(t *testing.T) {
	c := newClock("2026-01-30T23:00:00Z")
	cfg := quotaConfig(t, "")
	cfg.Location, _ = time.LoadLocation("Europe/Berlin") // UTC+1 in January
	s := newStore(t, cfg, c, nil)
	s.Add("dave", 10, 20) // 00:00 on the 31st in Berlin
	c.set("2026-01-31T22:59:00Z")
	s.Add("dave", 1, 2) // still the 31st
	if u := userReport(t, s, "dave"); u.Today.Total != 33 || u.Month.Total != 33 || u.Today.Upload != 11 {
		t.Errorf("same Berlin day: today %+v month %+v, want 33 and 33", u.Today, u.Month)
	}
	c.set("2026-01-31T23:00:00Z") // 1 February in Berlin
	s.Add("dave", 100, 0)
	if u := userReport(t, s, "dave"); u.Today.Total != 100 || u.Month.Total != 100 {
		t.Errorf("new Berlin month: today %+v month %+v, want 100 and 100", u.Today, u.Month)
	}
	c.set("2026-02-01T23:30:00Z") // the 2nd
	s.Add("dave", 0, 5)
	if u := userReport(t, s, "dave"); u.Today.Total != 5 || u.Month.Total != 105 {
		t.Errorf("new Berlin day: today %+v month %+v, want 5 and 105", u.Today, u.Month)
	}
	c.set("2026-02-01T22:59:00Z") // a clock stepped back over midnight: the day goes on
	s.Add("dave", 1, 0)
	if u := userReport(t, s, "dave"); u.Today.Total != 6 || u.Month.Total != 106 {
		t.Errorf("clock stepped back: today %+v month %+v, want 6 and 106", u.Today, u.Month)
	}
}

func TestShapingQuota(t *testing.T) {
	c := newClock("2026-03-10T12:00:00Z")
	ev := &events{}
	s := newStore(t, quotaConfig(t, ""), c, ev)
	early, err := s.Admit("bob", "socks5", "connect")
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	s.Add("bob", 300, 600)
	if _, over := s.OverRate("bob"); over || early.Limited() || len(ev.take()) != 0 {
		t.Fatal("bob over quota at 900 of 1000 bytes")
	}
	s.Add("bob", 0, 100)
	got := ev.take()
	want := Event{User: "bob", Group: "students", Over: true, Period: Daily, OverRate: 100}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("events at 1000 of 1000 bytes: %+v, want %+v", got, want)
	}
	if r, over := s.OverRate("bob"); !over || r != 100 {
		t.Errorf("OverRate(bob) = %v, %v; want 100, true", r, over)
	}
	if !early.Limited() {
		t.Error("a session that saw its user go over is not Limited")
	}
	late, err := s.Admit("bob", "http", "connect")
	if err != nil || !late.Limited() {
		t.Fatalf("Admit over a shaping quota: %v, limited %v; want admitted and limited", err, late.Limited())
	}
	late.Close()
	s.Add("bob", 50, 0)
	if got := ev.take(); len(got) != 0 {
		t.Errorf("more bytes while over: events %+v, want none", got)
	}
	c.set("2026-03-11T00:00:01Z")
	s.Tick(c.Now())
	if got := ev.take(); len(got) != 1 || got[0].Over || got[0].User != "bob" {
		t.Errorf("new day: events %+v, want bob back under", got)
	}
	if _, over := s.OverRate("bob"); over {
		t.Error("bob still over on a new day")
	}
	fresh, _ := s.Admit("bob", "socks5", "connect")
	if fresh.Limited() {
		t.Error("a session of a new day is Limited")
	}
	fresh.Close()
	// The monthly allowance (5000) holds across days.
	for range 3 {
		s.Add("bob", 999, 0)
		c.advance(24 * time.Hour)
		s.Tick(c.Now())
	}
	if got := ev.take(); len(got) != 0 {
		t.Errorf("under both allowances: events %+v", got)
	}
	s.Add("bob", 960, 0) // 1050 + 3×999 + 960 = 5007 this month, 960 today
	if got := ev.take(); len(got) != 1 || got[0].Period != Monthly {
		t.Errorf("monthly allowance: events %+v, want one over the monthly", got)
	}
}

func TestRefusingQuota(t *testing.T) {
	c := newClock("2026-03-10T12:00:00Z")
	ev := &events{}
	s := newStore(t, quotaConfig(t, ""), c, ev)
	live, err := s.Admit("alice", "socks5", "udp_associate")
	if err != nil {
		t.Fatal(err)
	}
	s.Add("alice", 1000, 0)
	if got := ev.take(); len(got) != 1 || got[0].OverRate != 0 || !s.Refuses("alice") {
		t.Fatalf("alice at her refusing allowance: events %+v, refuses %v", got, s.Refuses("alice"))
	}
	if _, over := s.OverRate("alice"); over {
		t.Error("OverRate reports a refusing quota as shaping")
	}
	_, err = s.Admit("alice", "http", "connect")
	var qe *QuotaError
	if !errors.As(err, &qe) || !errors.Is(err, ErrOverQuota) || err.Error() != "daily quota of 1kB used up" || qe.Group != "staff" {
		t.Errorf("Admit over a refusing quota: %v, want a QuotaError %q", err, "daily quota of 1kB used up")
	}
	if !live.Limited() {
		t.Error("the live session, which must now be cut, is not Limited")
	}
	live.Close()
	live.Close()
	if u := userReport(t, s, "alice"); u.Active || len(u.Sessions) != 0 {
		t.Errorf("after Close twice: active %v sessions %v", u.Active, u.Sessions)
	}
}

func TestUserQuotasAndReload(t *testing.T) {
	c := newClock("2026-03-10T12:00:00Z")
	ev := &events{}
	cfg := quotaConfig(t, "")
	s := newStore(t, cfg, c, ev)
	s.Add("dave", 1<<30, 0) // exempt
	s.Add("carol", 2000, 0) // her own monthly 3000 replaces staff's daily 1000
	if got := ev.take(); len(got) != 0 {
		t.Fatalf("events %+v, want none", got)
	}
	if u := userReport(t, s, "carol"); u.Quota == nil || u.Quota.Daily != nil || u.Quota.Monthly.Left != 1000 {
		t.Errorf("carol's quota view %+v, want monthly with 1000 left and no daily", u.Quota)
	}
	if u := userReport(t, s, "dave"); u.Quota != nil {
		t.Errorf("exempt dave has a quota view %+v", u.Quota)
	}
	lower := quotaConfig(t, "")
	lower.Shaping.UserQuotas["carol"] = configs.Quota{Monthly: 1500, OverRate: 50}
	s.Update(lower)
	if got := ev.take(); len(got) != 1 || got[0].User != "carol" || !got[0].Over {
		t.Errorf("reload lowering carol's allowance below her use: events %+v", got)
	}
	s.Update(cfg)
	if got := ev.take(); len(got) != 1 || got[0].Over {
		t.Errorf("reload raising it again: events %+v, want carol back under", got)
	}
}

func TestRateEstimate(t *testing.T) {
	c := newClock("2026-03-10T12:00:00Z")
	s := newStore(t, quotaConfig(t, ""), c, nil)
	for range 240 { // 256 KiB every 250 ms: 1 MiB/s down, as the relay reports
		s.Add("dave", 0, 256<<10)
		c.advance(250 * time.Millisecond)
	}
	u := userReport(t, s, "dave")
	if math.Abs(u.Rate.Download-(1<<20))/(1<<20) > 0.05 || u.Rate.Upload != 0 {
		t.Errorf("rate %+v after 60 s at 1 MiB/s down, want 1 MiB/s (±5%%) and 0", u.Rate)
	}
	c.advance(time.Minute)
	if u := userReport(t, s, "dave"); u.Rate.Download > 0.01*(1<<20) {
		t.Errorf("rate %.0f B/s a minute after the last byte, want about 0", u.Rate.Download)
	}
}

// TestAddAllocs checks the hot path: counting bytes of a known user allocates
// nothing.
func TestAddAllocs(t *testing.T) {
	s := newStore(t, quotaConfig(t, ""), newClock("2026-03-10T12:00:00Z"), nil)
	s.Add("bob", 1, 1)
	if n := testing.AllocsPerRun(1000, func() { s.Add("bob", 1, 1) }); n != 0 {
		t.Errorf("Add allocates %v times per call", n)
	}
}

// TestConcurrent counts from many sessions while the day turns, reports run,
// the config reloads and the state is written, and checks that no byte is lost.
func TestConcurrent(t *testing.T) {
	c := newClock("2026-03-10T23:59:59Z")
	dir := t.TempDir()
	s := newStore(t, quotaConfig(t, dir), c, &events{})
	const workers, adds = 8, 2000
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			user := fmt.Sprintf("u%d", i%3)
			for j := range adds {
				sess, err := s.Admit(user, "socks5", "connect")
				s.Add(user, 1, 2)
				if err == nil {
					sess.Throttled(time.Millisecond)
					sess.Limited()
					sess.Close()
				}
				if i == 0 && j%100 == 0 {
					s.Tick(c.advance(time.Second))
					s.Update(quotaConfig(t, dir))
				}
				if i == 1 && j%200 == 0 {
					s.Report(c.Now(), true)
					s.QuotaUsage(func(string, string, int64, int64) bool { return true })
					if err := s.Flush(); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	var total int64
	for _, u := range s.Report(c.Now(), true).Users {
		total += u.Month.Total
		if u.Active {
			t.Errorf("%s active after every session closed", u.User)
		}
	}
	if total != workers*adds*3 {
		t.Errorf("counted %d bytes this month, want %d", total, workers*adds*3)
	}
}

func TestNilStore(t *testing.T) {
	var s *Store
	s.Add("bob", 1, 1)
	sess, err := s.Admit("bob", "socks5", "connect")
	if err != nil || sess != nil {
		t.Fatalf("nil Store Admit = %v, %v; want nil, nil", sess, err)
	}
	sess.Throttled(time.Second)
	if sess.Limited() {
		t.Error("nil Session is Limited")
	}
	sess.Close()
	if _, over := s.OverRate("bob"); over || s.Refuses("bob") {
		t.Error("nil Store reports bob over")
	}
}
