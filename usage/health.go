package usage

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// StateHealth is how keeping usage in state_dir goes, for the metrics and
// /readyz: see [Store.StateHealth].
type StateHealth struct {
	// Kept is set when the store keeps usage in a state_dir; without one the
	// rest is zero.
	Kept bool
	// WriteFailures counts the writes of the usage file that failed since the
	// start.
	WriteFailures uint64
	// LastWrite is when the usage file was last written, or, before the first
	// write, when the start found state_dir took files.
	LastWrite time.Time
	// FailingSince is when the writes began to fail (zero while they succeed),
	// and LastError why the last one failed.
	FailingSince time.Time
	LastError    string
	// EntriesSetAside counts the users' entries of the usage file set aside at
	// start (kept in usage.json.bad-TIME; those users count from zero), and
	// FileSetAside tells whether the whole file was (usage.json.corrupt-TIME).
	EntriesSetAside int
	FileSetAside    bool
}

// Problem describes a failing usage state in a line, for /readyz; "" while
// the writes succeed.
func (h StateHealth) Problem() string {
	if h.FailingSince.IsZero() {
		return ""
	}
	return fmt.Sprintf("usage state: writes failing since %s (%d failed since start; counting goes on in memory): %s",
		h.FailingSince.UTC().Format(time.RFC3339), h.WriteFailures, h.LastError)
}

// StateHealth returns how keeping usage in state_dir goes. It never waits on
// a write under way.
func (s *Store) StateHealth() StateHealth {
	if s == nil {
		return StateHealth{}
	}
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return s.health.h
}

// stateHealth is the Store's StateHealth, guarded apart from the writes so
// that a scrape does not wait on a slow disk.
type stateHealth struct {
	mu     sync.Mutex
	h      StateHealth
	streak uint64 // failures since the last success
}

// wrote records a write of the usage file at path at now, failed when err is
// set, and logs the first failure of a streak and the success that ends it.
func (sh *stateHealth) wrote(err error, now time.Time, log *slog.Logger, path string) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	h := &sh.h
	if err != nil {
		h.WriteFailures++
		h.LastError = clip(err.Error())
		if sh.streak++; sh.streak == 1 {
			h.FailingSince = now
			log.Warn("writing usage state failed; counting goes on in memory, the write is tried again",
				"path", path, "err", err)
		}
		return
	}
	if sh.streak > 0 {
		log.Info("usage state written again", "path", path, "failing_since", h.FailingSince, "failures", sh.streak)
	}
	h.LastWrite, h.FailingSince, h.LastError, sh.streak = now, time.Time{}, "", 0
}
