package usage

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func readState(t *testing.T, dir string) fileState {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st fileState
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state file is not JSON: %v\n%s", err, data)
	}
	return st
}

func TestStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	c := newClock("2026-03-10T12:00:00Z")
	cfg := quotaConfig(t, dir)
	s, err := New(cfg, Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	s.Add("bob", 600, 500) // over his daily 1000
	s.Add("", 7, 0)        // the anonymous user
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	st := readState(t, dir)
	want := fileUser{Day: "2026-03-10", Month: "2026-03", DayUpload: 600, DayDownload: 500, MonthUpload: 600, MonthDownload: 500}
	if st.Version != 1 || st.Users["bob"] != want || st.Users[""].DayUpload != 7 {
		t.Errorf("state file %+v, want bob %+v", st, want)
	}
	ev := &events{}
	again := newStore(t, cfg, c, ev)
	if r, over := again.OverRate("bob"); !over || r != 100 {
		t.Errorf("after reopening, bob over = %v at %v; want still over at 100 B/s", over, r)
	}
	if got := ev.take(); len(got) != 0 {
		t.Errorf("reopening reported %+v; the crossing was reported before", got)
	}
	if u := userReport(t, again, "bob"); u.Today.Total != 1100 || u.Month.Total != 1100 {
		t.Errorf("after reopening: today %+v month %+v, want 1100", u.Today, u.Month)
	}
	// Reopened the next day: the day starts afresh, the month goes on.
	again.Close()
	c.set("2026-03-11T08:00:00Z")
	third := newStore(t, cfg, c, nil)
	if u := userReport(t, third, "bob"); u.Today.Total != 0 || u.Month.Total != 1100 {
		t.Errorf("reopened the next day: today %+v month %+v, want 0 and 1100", u.Today, u.Month)
	}
	if _, over := third.OverRate("bob"); over {
		t.Error("bob still over his daily allowance the next day")
	}
}

// TestFlushWritesOnlyChanges checks the atomic write: one whole file, no temp
// files left, and no write when nothing changed.
func TestFlushWritesOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	c := newClock("2026-03-10T12:00:00Z")
	s := newStore(t, quotaConfig(t, dir), c, nil)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); !os.IsNotExist(err) {
		t.Errorf("Flush with nothing counted wrote a file: %v", err)
	}
	s.Add("bob", 1, 1)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	first, _ := os.Stat(filepath.Join(dir, StateFile))
	c.advance(time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.Stat(filepath.Join(dir, StateFile)); !os.SameFile(first, second) {
		t.Error("Flush with nothing new rewrote the file")
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, n := range names {
		if b := filepath.Base(n); b != StateFile && b != lockFile {
			t.Errorf("left in state_dir: %s", b)
		}
	}
}

// TestCorruptStateMovedAside starts on state files that cannot be used as a
// whole: each is reported, kept under a new name with its bytes, and counting
// starts from zero without writing over it.
func TestCorruptStateMovedAside(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":          "\x00\x01not json",
		"truncated":        `{"version": 1, "saved": "2026-03-10T12:00:00Z", "users": {"bob": {"day": "2026-03-10"`,
		"version":          `{"version": 2, "saved": "2026-03-10T12:00:00Z", "users": {}}`,
		"unknown key":      `{"version": 1, "saved": "2026-03-10T12:00:00Z", "users": {}, "extra": 1}`,
		"two objects":      `{"version": 1, "users": {}} {"version": 1, "users": {}}`,
		"empty":            ``,
		"not a object":     `[1, 2]`,
		"users not object": `{"version": 1, "users": [{"day": "2026-03-10"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, StateFile)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			s, err := New(quotaConfig(t, dir), Options{Now: newClock("2026-03-10T12:00:00Z").Now,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("New on a corrupt state file: %v", err)
			}
			defer s.Close()
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if len(aside) != 1 {
				t.Fatalf("moved aside: %v, want one file", aside)
			}
			if kept, _ := os.ReadFile(aside[0]); string(kept) != content {
				t.Errorf("the moved file holds %q, want the original %q", kept, content)
			}
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "moved aside") ||
				!strings.Contains(logs.String(), filepath.Base(aside[0])) {
				t.Errorf("log does not report the move: %s", logs.String())
			}
			s.Add("bob", 5, 5)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if st := readState(t, dir); st.Users["bob"].DayUpload != 5 {
				t.Errorf("new state file %+v", st)
			}
			if h := s.StateHealth(); !h.FileSetAside || h.EntriesSetAside != 0 {
				t.Errorf("state health %+v, want the file set aside", h)
			}
		})
	}
}

// TestUnreadableStateMovedAside covers a state file that cannot be read at all
// (here a folder in its place).
func TestUnreadableStateMovedAside(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, StateFile), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := New(quotaConfig(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if aside, _ := filepath.Glob(filepath.Join(dir, StateFile+".corrupt-*")); len(aside) != 1 {
		t.Errorf("moved aside: %v", aside)
	}
}

func TestStateDirProblems(t *testing.T) {
	dir := t.TempDir()
	first, err := New(quotaConfig(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(quotaConfig(t, dir), Options{})
	if err == nil || !strings.Contains(err.Error(), "in use by another sockshaper (pid ") {
		t.Errorf("second store on one state_dir: %v, want in use", err)
	}
	first.Close()
	second, err := New(quotaConfig(t, dir), Options{})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	second.Close()

	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := New(quotaConfig(t, filepath.Join(file, "state")), Options{}); err == nil {
		t.Error("state_dir under a regular file: no error")
	}
	// A temp file left by a crash mid-write is removed; the state file stays.
	crashed := t.TempDir()
	os.WriteFile(filepath.Join(crashed, StateFile+".tmp-123"), []byte("half"), 0o600)
	s, err := New(quotaConfig(t, crashed), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if left, _ := filepath.Glob(filepath.Join(crashed, "*.tmp-*")); len(left) != 0 {
		t.Errorf("stale temp files left: %v", left)
	}
}

// TestRunFlushesAndTicks checks the store's own goroutine: changes reach the
// file within FlushEvery, and midnight lifts a daily allowance within a second.
func TestRunFlushesAndTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		ev := &events{}
		// synctest's clock starts at midnight UTC on 1 January 2000.
		s, err := New(quotaConfig(t, dir), Options{OnQuota: ev.add, FlushEvery: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		time.Sleep(23*time.Hour + 59*time.Minute)
		s.Add("bob", 2000, 0)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if st := readState(t, dir); st.Users["bob"].DayUpload != 2000 {
			t.Errorf("5 s after counting, the file holds %+v", st.Users["bob"])
		}
		time.Sleep(55*time.Second + time.Second) // midnight and a tick
		synctest.Wait()
		got := ev.take()
		if len(got) != 2 || !got[0].Over || got[1].Over {
			t.Errorf("events %+v, want bob over, then back under at midnight", got)
		}
		cancel()
		<-done
		s.Close()
	})
}

// FuzzParseState feeds the state file parser arbitrary bytes: it never panics;
// what it accepts has no negative count, names no user both usable and set
// aside, and reads back the same after the Store writes it again.
func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"version": 1, "saved": "2026-03-10T12:00:00Z", "users": {"bob": {"day": "2026-03-10", "month": "2026-03", "day_upload": 5, "month_download": 9}}}`))
	f.Add([]byte(`{"version": 1, "users": {"": {"day": "2026-02-28", "month": "2026-03"}}}`))
	f.Add([]byte(`{"version": 1, "users": {"a": {"day": "2026-03-01", "month": "2026-03", "day_upload": -1}, "b": {"day": "x"}, "a": {}}}`))
	f.Add([]byte(`{"version": 1, "users": {"c": {"day": "2026-03-01", "month": "2026-03", "extra": 1}, "d": null, "e": 7}}`))
	f.Add([]byte(`{"version": 1, "users": null}`))
	f.Add([]byte(`{"version": 2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, bad, err := parseState(data)
		if err != nil {
			if users != nil || bad != nil {
				t.Fatalf("a refused file gave %d users and %d entries set aside", len(users), len(bad))
			}
			return
		}
		for _, b := range bad {
			if users[b.user] != nil {
				t.Fatalf("user %q both loaded and set aside (%s)", b.user, b.reason)
			}
			if b.reason == "" || len(b.reason) > 200 {
				t.Fatalf("user %q set aside with reason %q", b.user, b.reason)
			}
		}
		s := &Store{users: users, now: time.Now}
		s.cfg.Store(&storeConfig{loc: time.UTC, gen: 1})
		for name, e := range users {
			if e.day[0] < 0 || e.day[1] < 0 || e.month[0] < 0 || e.month[1] < 0 {
				t.Fatalf("user %q: negative count %+v", name, e)
			}
		}
		out, err := json.Marshal(s.snapshot(time.Unix(0, 0)))
		if err != nil {
			t.Fatal(err)
		}
		again, bad, err := parseState(out)
		if err != nil || len(bad) != 0 {
			t.Fatalf("the Store's own file does not parse whole: %v %v\n%s", err, bad, out)
		}
		for name, e := range again {
			if o := users[name]; o == nil || o.day != e.day || o.month != e.month {
				t.Fatalf("user %q read back as %+v, was %+v", name, e, o)
			}
		}
	})
}
