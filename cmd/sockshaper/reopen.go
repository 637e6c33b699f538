package main

import (
	"fmt"
	"os"
	"sync"
)

// reopenableFile is an append-only log file that SIGHUP reopens, so logrotate can
// move it away and the daemon starts a new one.
type reopenableFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openReopenable(path string) (*reopenableFile, error) {
	r := &reopenableFile{path: path}
	return r, r.Reopen()
}

// Reopen closes the file and opens path again (creating it when it was moved).
func (r *reopenableFile) Reopen() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open %s: %w", r.path, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		r.f.Close()
	}
	r.f = f
	return nil
}

// Write appends one log record.
func (r *reopenableFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Write(p)
}
