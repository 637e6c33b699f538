package usage

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badEntriesFile has alice over her refusing daily 1000 B (staff), carol with
// usage this month, and five entries that cannot be used.
const badEntriesFile = `{"version": 1, "saved": "2026-03-10T12:00:00Z", "users": {
 "alice": {"day": "2026-03-10", "month": "2026-03", "day_download": 1500, "month_download": 1500},
 "bob": {"day": "2026-03-10", "month": "2026-03", "day_upload": -5},
 "carol": {"day": "2026-03-10", "month": "2026-03", "month_upload": 2000},
 "dave": {"day": "10.3.2026", "month": "2026-03"},
 "erin": {"day": "2026-03-10", "month": "2026-03", "extra": 1},
 "frank": {"day": "2026-03-10", "month": "2026-03"},
 "frank": {"day": "2026-03-10", "month": "2026-03", "day_upload": 99},
 "gina": 7
}}
`

// TestBadEntriesSetAside starts on a usage file with entries that cannot be
// used: the others keep their counts (alice stays refused), each user set
// aside is logged once, the file is kept whole aside, the state health counts
// the entries, and the next write leaves them out, so a restart reports none.
func TestBadEntriesSetAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, StateFile)
	if err := os.WriteFile(path, []byte(badEntriesFile), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	c := newClock("2026-03-10T13:00:00Z")
	s, err := New(quotaConfig(t, dir), Options{Now: c.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Refuses("alice") {
		t.Error("alice, over her refusing allowance, is admitted after a start on a file with bad entries")
	}
	if u := userReport(t, s, "carol"); u.Month.Total != 2000 {
		t.Errorf("carol's month after the start: %+v, want 2000", u.Month)
	}
	for _, user := range []string{"bob", "dave", "erin", "frank", "gina"} {
		if n := strings.Count(logs.String(), "user="+user+" "); n != 1 {
			t.Errorf("%s named in %d log lines, want 1:\n%s", user, n, logs.String())
		}
	}
	kept, _ := filepath.Glob(path + ".bad-*")
	if len(kept) != 1 {
		t.Fatalf("kept aside: %v, want one copy", kept)
	}
	if data, _ := os.ReadFile(kept[0]); string(data) != badEntriesFile {
		t.Errorf("the copy kept aside holds %q", data)
	}
	if h := s.StateHealth(); !h.Kept || h.EntriesSetAside != 5 || h.FileSetAside {
		t.Errorf("state health %+v, want 5 entries set aside", h)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	st := readState(t, dir)
	if len(st.Users) != 2 || st.Users["alice"].DayDownload != 1500 || st.Users["carol"].MonthUpload != 2000 {
		t.Errorf("file written after the start: %+v, want alice and carol only", st.Users)
	}
	logs.Reset()
	again := newStore(t, quotaConfig(t, dir), c, nil)
	if h := again.StateHealth(); h.EntriesSetAside != 0 || strings.Contains(logs.String(), "unusable") {
		t.Errorf("a restart reports entries set aside again: %+v", h)
	}
}

// TestManyBadEntriesLoggedBounded: a file with thousands of unusable entries
// logs a bounded number of lines.
func TestManyBadEntriesLoggedBounded(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString(`{"version": 1, "users": {`)
	for i := range 5000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"u` + strings.Repeat("x", i%300) + string(rune('a'+i%26)) + `": {"day": "bad"}`)
	}
	b.WriteString(`}}`)
	os.WriteFile(filepath.Join(dir, StateFile), []byte(b.String()), 0o600)
	var logs bytes.Buffer
	s, err := New(quotaConfig(t, dir), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := strings.Count(logs.String(), "\n"); n > maxBadLogged+1 {
		t.Errorf("%d log lines for 5000 bad entries, want at most %d", n, maxBadLogged+1)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > 600 {
			t.Errorf("log line of %d bytes", len(line))
		}
	}
	if h := s.StateHealth(); h.EntriesSetAside < 1000 {
		t.Errorf("state health %+v", h)
	}
}

// TestStateDirRefusesLinksAndOthersWrites: a lock file that is a symbolic
// link is refused (its target is never truncated), a usage file that is one
// is moved aside without reading or touching its target, and a state_dir
// others may write to is refused with its name and mode, by the start and by
// CheckStateDir alike.
func TestStateDirRefusesLinksAndOthersWrites(t *testing.T) {
	target := filepath.Join(t.TempDir(), "precious")
	os.WriteFile(target, []byte("do not truncate"), 0o600)

	linkedLock := t.TempDir()
	os.Symlink(target, filepath.Join(linkedLock, lockFile))
	for _, err := range []error{newErr(t, linkedLock), CheckStateDir(linkedLock)} {
		if err == nil || !strings.Contains(err.Error(), "lock is a symbolic link") {
			t.Errorf("state_dir with a linked lock: %v", err)
		}
	}
	if data, _ := os.ReadFile(target); string(data) != "do not truncate" {
		t.Fatalf("the lock link's target now holds %q", data)
	}

	linkedState := t.TempDir()
	os.Symlink(target, filepath.Join(linkedState, StateFile))
	if err := CheckStateDir(linkedState); err == nil || !strings.Contains(err.Error(), "usage.json is a symbolic link") {
		t.Errorf("CheckStateDir with a linked usage file: %v", err)
	}
	s, err := New(quotaConfig(t, linkedState), Options{})
	if err != nil {
		t.Fatalf("start with a linked usage file: %v", err)
	}
	s.Add("bob", 1, 1)
	s.Close()
	if data, _ := os.ReadFile(target); string(data) != "do not truncate" {
		t.Errorf("the usage link's target now holds %q", data)
	}
	if aside, _ := filepath.Glob(filepath.Join(linkedState, StateFile+".corrupt-*")); len(aside) != 1 {
		t.Errorf("the linked usage file was not moved aside: %v", aside)
	}

	open := t.TempDir()
	os.Chmod(open, 0o777|os.ModeSticky) // as /tmp is
	for _, err := range []error{newErr(t, open), CheckStateDir(open)} {
		if err == nil || !strings.Contains(err.Error(), "state_dir "+open+" is writable by every user (mode 1777)") {
			t.Errorf("world-writable state_dir: %v", err)
		}
	}
	if err := CheckStateDir(filepath.Join(open, "not yet")); err != nil {
		t.Errorf("CheckStateDir of a folder the start will create: %v", err)
	}
}

// newErr starts a Store on dir and returns the error, closing a Store that
// started.
func newErr(t *testing.T, dir string) error {
	s, err := New(quotaConfig(t, dir), Options{})
	if err == nil {
		s.Close()
	}
	return err
}

// TestWriteFailuresCounted: writes that fail (here a folder where the usage
// file goes) are counted, logged once for the streak, shown as a problem, and
// the first write that succeeds again is logged and clears it.
func TestWriteFailuresCounted(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	c := newClock("2026-03-10T12:00:00Z")
	s, err := New(quotaConfig(t, dir), Options{Now: c.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := s.StateHealth()
	if !start.Kept || !start.LastWrite.Equal(c.Now()) || start.Problem() != "" {
		t.Fatalf("state health at start %+v", start)
	}
	blocker := filepath.Join(dir, StateFile)
	os.Mkdir(blocker, 0o700)
	os.WriteFile(filepath.Join(blocker, "x"), nil, 0o600) // a rename cannot replace a folder that is not empty
	failedAt := c.advance(5)
	for range 3 {
		s.Add("bob", 1, 1)
		if err := s.Flush(); err == nil {
			t.Fatal("a write over a folder succeeded")
		}
		c.advance(5)
	}
	h := s.StateHealth()
	if h.WriteFailures != 3 || !h.FailingSince.Equal(failedAt) || !h.LastWrite.Equal(start.LastWrite) ||
		!strings.Contains(h.Problem(), "usage state: writes failing since 2026-03-10T12:00:00Z (3 failed since start") {
		t.Errorf("state health after 3 failures %+v, problem %q", h, h.Problem())
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"writing usage state failed"); n != 1 {
		t.Errorf("%d warnings for one streak of failures:\n%s", n, logs.String())
	}
	os.RemoveAll(blocker)
	if err := s.Flush(); err != nil {
		t.Fatalf("the write after the folder went: %v", err)
	}
	h = s.StateHealth()
	if h.WriteFailures != 3 || !h.FailingSince.IsZero() || h.Problem() != "" || !h.LastWrite.Equal(c.Now()) {
		t.Errorf("state health after recovery %+v", h)
	}
	if !strings.Contains(logs.String(), `msg="usage state written again"`) || !strings.Contains(logs.String(), "failures=3") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
	if st := readState(t, dir); st.Users["bob"].DayUpload != 3 {
		t.Errorf("usage written after recovery: %+v", st.Users["bob"])
	}
}
