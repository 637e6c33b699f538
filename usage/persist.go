package usage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// StateFile is the name of the usage file in state_dir.
	StateFile = "usage.json"
	// lockFile holds the lock that keeps two processes off one state_dir.
	lockFile     = "lock"
	stateVersion = 1
)

// fileState is the usage file: JSON, so that an operator can read and mend it.
type fileState struct {
	Version int                 `json:"version"`
	Saved   time.Time           `json:"saved"`
	Users   map[string]fileUser `json:"users"`
}

// fileUser is one user's counts: the day and month they belong to, in the
// config's time zone, and bytes by direction.
type fileUser struct {
	Day           string `json:"day"`   // 2006-01-02
	Month         string `json:"month"` // 2006-01
	DayUpload     int64  `json:"day_upload"`
	DayDownload   int64  `json:"day_download"`
	MonthUpload   int64  `json:"month_upload"`
	MonthDownload int64  `json:"month_download"`
}

// stateDir is a state folder this process holds the lock of.
type stateDir struct {
	dir  string
	lock *os.File
}

// openStateDir creates dir if needed, takes its lock and checks that files can
// be written there, so that a bad folder stops the daemon at start rather than
// losing usage later.
func openStateDir(dir string) (*stateDir, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(f.Name())
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state_dir %s is in use by another sockshaper (pid %s)", dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("state_dir %s: lock: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	// Temp files a crash left behind: nobody else writes here while we hold the lock.
	if stale, err := filepath.Glob(filepath.Join(dir, StateFile+".tmp-*")); err == nil {
		for _, name := range stale {
			os.Remove(name)
		}
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state_dir %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &stateDir{dir: dir, lock: f}, nil
}

func (d *stateDir) path() string { return filepath.Join(d.dir, StateFile) }

// close releases the lock.
func (d *stateDir) close() error { return d.lock.Close() }

// load reads the usage file. A missing file is no usage. A file that cannot be
// read or parsed is logged and renamed aside (usage.json.corrupt-TIMESTAMP), so
// that nothing writes over it and an operator can mend it; counting then starts
// from zero. load fails only when such a file cannot be moved aside.
func (d *stateDir) load(log *slog.Logger) (map[string]*entry, error) {
	data, err := os.ReadFile(d.path())
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]*entry{}, nil
	}
	var users map[string]*entry
	if err == nil {
		if users, err = parseState(data); err == nil {
			return users, nil
		}
	}
	aside, merr := d.moveAside()
	if merr != nil {
		return nil, fmt.Errorf("usage state %s is unreadable (%v) and could not be moved aside: %w", d.path(), err, merr)
	}
	log.Error("usage state unreadable; moved aside, counting from zero", "path", d.path(), "moved_to", aside, "err", err)
	return map[string]*entry{}, nil
}

// moveAside renames the usage file to a name with the time, never over
// another file.
func (d *stateDir) moveAside() (string, error) {
	base := d.path() + ".corrupt-" + time.Now().UTC().Format("20060102T150405Z")
	for i := 0; ; i++ {
		name := base
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name, os.Rename(d.path(), name)
		} else if err != nil {
			return "", err
		}
	}
}

// parseState reads a usage file, refusing anything it does not fully understand.
func parseState(data []byte) (map[string]*entry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var st fileState
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if dec.More() {
		return nil, errors.New("parse: data after the JSON object")
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("version %d, want %d", st.Version, stateVersion)
	}
	users := make(map[string]*entry, len(st.Users))
	for name, u := range st.Users {
		day, err1 := time.Parse("2006-01-02", u.Day)
		month, err2 := time.Parse("2006-01", u.Month)
		switch {
		case err1 != nil || err2 != nil:
			return nil, fmt.Errorf("user %q: day %q or month %q is not a date", name, u.Day, u.Month)
		case u.DayUpload < 0 || u.DayDownload < 0 || u.MonthUpload < 0 || u.MonthDownload < 0:
			return nil, fmt.Errorf("user %q: negative count", name)
		}
		e := &entry{
			day:   [2]int64{u.DayUpload, u.DayDownload},
			month: [2]int64{u.MonthUpload, u.MonthDownload},
			at:    period{day: dateKey(day), month: dateKey(month) / 100},
		}
		if e.at.day/100 != e.at.month {
			e.day = [2]int64{} // a day of another month is over anyway
		}
		users[name] = e
	}
	return users, nil
}

func dateKey(t time.Time) int32 {
	y, m, d := t.Date()
	return int32(y*10000 + int(m)*100 + d)
}

func formatKey(k int32, month bool) string {
	if month {
		return fmt.Sprintf("%04d-%02d", k/100, k%100)
	}
	return fmt.Sprintf("%04d-%02d-%02d", k/10000, k/100%100, k%100)
}

// snapshot copies every user's counts for the file.
func (s *Store) snapshot(now time.Time) fileState {
	st := fileState{Version: stateVersion, Saved: now.UTC(), Users: map[string]fileUser{}}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for name, e := range s.users {
		e.mu.Lock()
		if e.at.month != 0 && (e.month != [2]int64{} || e.day != [2]int64{}) {
			st.Users[name] = fileUser{
				Day: formatKey(e.at.day, false), Month: formatKey(e.at.month, true),
				DayUpload: e.day[upload], DayDownload: e.day[download],
				MonthUpload: e.month[upload], MonthDownload: e.month[download],
			}
		}
		e.mu.Unlock()
	}
	return st
}

// Flush writes the usage to state_dir if it changed since the last write: to
// a new file that is synced and then renamed over the old one, and the folder
// synced, so that a crash at any point leaves the old file or the new one
// whole. Without a state_dir it does nothing.
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.state == nil || s.closed || !s.dirty.Swap(false) {
		return nil
	}
	data, err := json.MarshalIndent(s.snapshot(s.now()), "", " ")
	if err == nil {
		err = writeAtomic(s.state.path(), append(data, '\n'))
	}
	if err != nil {
		s.dirty.Store(true)
	}
	return err
}

// Close writes the usage a last time and releases state_dir. The daemon calls
// it after the sessions have drained. Counting goes on in memory afterwards,
// but nothing more is written.
func (s *Store) Close() error {
	err := s.Flush()
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.state != nil && !s.closed {
		s.closed = true
		if cerr := s.state.close(); err == nil {
			err = cerr
		}
	}
	return err
}

// writeAtomic replaces path with data: temp file, fsync, rename, fsync dir.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Run ticks every second and writes changed usage every FlushEvery, until ctx
// ends. A failed write is logged (at most once a minute) and tried again.
func (s *Store) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	flush := time.NewTicker(s.flushEvery)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.Tick(s.now())
		case <-flush.C:
			s.flushLogged()
		}
	}
}

func (s *Store) flushLogged() {
	if err := s.Flush(); err != nil {
		s.flushMu.Lock()
		defer s.flushMu.Unlock()
		if now := time.Now(); now.Sub(s.warnedAt) >= time.Minute {
			s.warnedAt = now
			s.log.Error("writing usage state failed; counting goes on in memory", "err", err)
		}
	}
}
