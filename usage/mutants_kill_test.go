package usage

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Tests that kill mutants gremlins found alive in this package (see
// docs/testing.md): each pins a behaviour no other test checked.

// TestTickDropsOnlyIdleUsers: the daily Tick drops a user with no live session,
// no bytes this month and no activity for more than RecentlyActive, and keeps
// every other one: one with a live session, one with this month's bytes (until
// the month turns), one active exactly RecentlyActive ago.
func TestTickDropsOnlyIdleUsers(t *testing.T) {
	c := newClock("2026-03-10T12:00:00Z")
	s := newStore(t, quotaConfig(t, ""), c, nil)
	live, _ := s.Admit("live", "socks5", "connect")
	s.Add("bytes", 10, 10)
	quiet, _ := s.Admit("quiet", "socks5", "connect")
	quiet.Close()
	c.set("2026-03-10T23:50:00Z")
	recent, _ := s.Admit("recent", "http", "request")
	recent.Close()

	check := func(when string, want ...string) {
		t.Helper()
		s.Tick(c.set(when))
		if got := slices.Sorted(maps.Keys(s.users)); !slices.Equal(got, want) {
			t.Errorf("after the Tick at %s: users %v, want %v", when, got, want)
		}
	}
	check("2026-03-11T00:05:00Z", "bytes", "live", "recent") // quiet idle for 12 h; recent for exactly 15 min
	check("2026-04-01T00:05:00Z", "live")                    // a new month: March's bytes keep nobody
	live.Close()
	check("2026-04-02T00:05:00Z") // and a day later the last session's user goes too
}

// TestStateDirInUseNamesTheHolder: a second store on a state_dir in use says
// which process holds it, from the PID the first wrote into the lock file.
func TestStateDirInUseNamesTheHolder(t *testing.T) {
	dir := t.TempDir()
	first, err := New(quotaConfig(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = New(quotaConfig(t, dir), Options{})
	if want := fmt.Sprintf("(pid %d)", os.Getpid()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("second store on one state_dir: %v, want it to name %s", err, want)
	}
}

// TestStateFileKeepsUsersWithBytesOnly: the state file holds every user with
// bytes this month, also one whose day counts a new day reset, and no user
// without bytes.
func TestStateFileKeepsUsersWithBytesOnly(t *testing.T) {
	dir := t.TempDir()
	c := newClock("2026-03-10T12:00:00Z")
	s := newStore(t, quotaConfig(t, dir), c, nil)
	s.Add("early", 100, 200)
	s.Tick(c.set("2026-03-11T00:05:00Z")) // early's day counts start again at 0
	s.Add("today", 1, 2)
	idle, _ := s.Admit("idle", "socks5", "connect") // known, active, no bytes
	idle.Close()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	users, bad, err := parseState(data)
	if err != nil || len(bad) != 0 {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(users)); !slices.Equal(got, []string{"early", "today"}) {
		t.Fatalf("users in the state file: %v, want [early today]", got)
	}
	if m := users["early"].month; m != [2]int64{100, 200} {
		t.Errorf("early's month in the file: %v, want [100 200]", m)
	}
}

// TestMoveAsideNamesByTimeThenNumber: a corrupt state file moves to
// usage.json.corrupt-TIME, and a second one in the same second to
// usage.json.corrupt-TIME-1, never over the first.
func TestMoveAsideNamesByTimeThenNumber(t *testing.T) {
	for try := 0; ; try++ {
		d := &stateDir{dir: t.TempDir()}
		for range 2 {
			os.WriteFile(d.path(), []byte("{corrupt"), 0o600)
			if _, err := d.moveAside(slog.New(slog.DiscardHandler), errors.New("corrupt")); err != nil {
				t.Fatal(err)
			}
		}
		entries, _ := os.ReadDir(d.dir)
		var names []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), StateFile+".corrupt-") {
				names = append(names, e.Name())
			}
		}
		slices.Sort(names)
		if len(names) != 2 {
			t.Fatalf("files moved aside: %v, want two", names)
		}
		first, second := names[0], names[1]
		if second != first+"-1" && try < 3 {
			continue // the second changed between the two: again
		}
		if ok, _ := regexp.MatchString(`^usage\.json\.corrupt-\d{8}T\d{6}Z$`, first); !ok || second != first+"-1" {
			t.Errorf("moved aside to %q then %q, want usage.json.corrupt-TIME then the same with -1", first, second)
		}
		return
	}
}

// TestQuotaUsageRows: the rows behind the per-user quota metrics are each
// limited user's bytes in each period that has an allowance (upload plus
// download), and none for a period without one or an exempt user.
func TestQuotaUsageRows(t *testing.T) {
	c := newClock("2026-03-10T12:00:00Z")
	s := newStore(t, quotaConfig(t, ""), c, nil)
	s.Add("bob", 100, 200)  // a student: daily 1000, monthly 5000
	s.Add("alice", 10, 20)  // staff: daily 1000 only
	s.Add("carol", 1, 2)    // her own monthly 3000 only
	s.Add("dave", 500, 500) // exempt
	got := map[string][2]int64{}
	s.QuotaUsage(func(user, period string, used, limit int64) bool {
		got[user+" "+period] = [2]int64{used, limit}
		return true
	})
	want := map[string][2]int64{
		"bob " + Daily: {300, 1000}, "bob " + Monthly: {300, 5000},
		"alice " + Daily: {30, 1000}, "carol " + Monthly: {3, 3000},
	}
	if !maps.Equal(got, want) {
		t.Errorf("QuotaUsage rows %v, want %v", got, want)
	}
	if q := userReport(t, s, "alice").Quota; q == nil || q.Daily == nil || q.Monthly != nil {
		t.Errorf("alice's quota in the view: %+v, want a daily allowance and no monthly one", q)
	}
}

// TestAddOfNothingCreatesNoUser: Add with no bytes leaves the store as it was:
// no user appears in the view or the state file for it.
func TestAddOfNothingCreatesNoUser(t *testing.T) {
	s := newStore(t, quotaConfig(t, ""), newClock("2026-03-10T12:00:00Z"), nil)
	s.Add("ghost", 0, 0)
	s.Add("ghost", 0, -5)
	if _, ok := s.users["ghost"]; ok {
		t.Error("Add of no bytes created a user")
	}
}

// TestViewAndPruningTimes: the view lists a user active exactly RecentlyActive
// ago, and pruning happens at the first Tick of a day only, not at every Tick.
func TestViewAndPruningTimes(t *testing.T) {
	c := newClock("2026-03-10T08:00:00Z")
	s := newStore(t, quotaConfig(t, ""), c, nil)
	quiet, _ := s.Admit("quiet", "socks5", "connect")
	quiet.Close()
	s.Tick(c.Now()) // the day's first Tick
	now := c.advance(RecentlyActive)
	if r := s.Report(now, false); len(r.Users) != 1 || r.Users[0].User != "quiet" {
		t.Errorf("view at exactly RecentlyActive after the last session: %+v, want quiet listed", r.Users)
	}
	s.Tick(c.set("2026-03-10T12:00:00Z"))
	if _, ok := s.users["quiet"]; !ok {
		t.Error("a Tick later in the same day pruned an idle user: pruning is once a day")
	}
}

// TestFlushEveryOption: Options.FlushEvery is kept when set, and 0 means
// DefaultFlushEvery (a zero ticker period would panic in Run).
func TestFlushEveryOption(t *testing.T) {
	for _, tc := range []struct{ set, want time.Duration }{{0, DefaultFlushEvery}, {3 * time.Second, 3 * time.Second}} {
		s, err := New(quotaConfig(t, ""), Options{FlushEvery: tc.set})
		if err != nil {
			t.Fatal(err)
		}
		if s.flushEvery != tc.want {
			t.Errorf("FlushEvery %v: flushes every %v, want %v", tc.set, s.flushEvery, tc.want)
		}
		s.Close()
	}
}

// TestQuotaLogs: the log says whether a crossing refuses sessions (over_rate
// 0) or slows them, and a write that worked logs no failure.
func TestQuotaLogs(t *testing.T) {
	var logs strings.Builder
	c := newClock("2026-03-10T12:00:00Z")
	s, err := New(quotaConfig(t, t.TempDir()), Options{Now: c.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Add("bob", 600, 600)  // a student: slowed to 100 B/s
	s.Add("alice", 1000, 0) // staff: refused
	s.Flush()
	for user, want := range map[string]string{"bob": "refused=false", "alice": "refused=true"} {
		if line := lineWith(logs.String(), `msg="quota exceeded" user=`+user+" "); !strings.Contains(line, want) {
			t.Errorf("%s's crossing logged as %q, want %s", user, line, want)
		}
	}
	if strings.Contains(logs.String(), "failed") {
		t.Errorf("a successful write logged a failure:\n%s", logs.String())
	}
}

// lineWith returns the first line of text that contains sub.
func lineWith(text, sub string) string {
	for line := range strings.Lines(text) {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}
