package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

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
// whole. Without a state_dir it does nothing. A failed write is counted (see
// [Store.StateHealth]) and logged once per streak of failures, as is the
// first write that succeeds again; the usage stays to be written next time.
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
	s.health.wrote(err, s.now(), s.log, s.state.path())
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
// The temp file is new (O_EXCL), and a rename replaces the name path, never
// what a link there points to.
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
	return syncDir(dir)
}

// syncDir makes the names created in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Run ticks every second and writes changed usage every FlushEvery, until ctx
// ends. A failed write is tried again at the next FlushEvery.
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
			s.Flush()
		}
	}
}
