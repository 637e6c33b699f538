package main

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// Accounting lines are batched: one write(2) per line was a system call per
// session, a measurable share of a short session's cost under churn (issue
// 24). A line waits at most accessFlushEvery, and never past a reopen, a drain
// or the daemon's exit.
const (
	accessBufferSize = 64 << 10
	accessFlushEvery = 250 * time.Millisecond
)

// reopenableFile is an append-only log file that SIGHUP reopens, so logrotate can
// move it away and the daemon starts a new one. It buffers whole records (each
// Write is one, as slog's handlers write them) and writes them out within
// accessFlushEvery of the first one buffered, when the buffer fills, before a
// reopen and at Close: a record is never split between two writes, nor between
// the old file and the new. After Close it writes each record at once.
type reopenableFile struct {
	path    string
	onError func(error) // hears a failed write; nil: ignored

	mu      sync.Mutex
	f       *os.File
	buf     []byte
	timer   *time.Timer // flushes the buffer; armed while it holds records
	direct  bool        // closed: no more buffering
	failing bool        // the last write failed (report the first failure only)
}

func openReopenable(path string, onError func(error)) (*reopenableFile, error) {
	r := &reopenableFile{path: path, onError: onError, buf: make([]byte, 0, accessBufferSize)}
	r.timer = time.AfterFunc(time.Hour, r.Flush)
	r.timer.Stop()
	return r, r.Reopen()
}

// Reopen writes out what is buffered to the file open now, closes it and opens
// path again (creating it when it was moved).
func (r *reopenableFile) Reopen() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open %s: %w", r.path, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		r.flushLocked()
		r.f.Close()
	}
	r.f = f
	return nil
}

// Write buffers one log record; records of more than the buffer go out at once.
func (r *reopenableFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf)+len(p) > cap(r.buf) {
		r.flushLocked()
	}
	if r.direct || len(p) > cap(r.buf) {
		return r.writeLocked(p)
	}
	if len(r.buf) == 0 {
		r.timer.Reset(accessFlushEvery)
	}
	r.buf = append(r.buf, p...)
	return len(p), nil
}

// Flush writes out the buffered records.
func (r *reopenableFile) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked()
}

// Close writes out the buffered records and stops buffering: records that
// come later (a session the drain cut, ending late) are written at once. The
// file stays open for them; the process's exit closes it.
func (r *reopenableFile) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked()
	r.direct = true
	r.timer.Stop()
}

func (r *reopenableFile) flushLocked() {
	if len(r.buf) == 0 {
		return
	}
	r.writeLocked(r.buf)
	// A failed write drops its records: holding them would grow without
	// bound on a full disk, and onError has said so.
	r.buf = r.buf[:0]
}

func (r *reopenableFile) writeLocked(p []byte) (int, error) {
	n, err := r.f.Write(p)
	if err != nil && !r.failing && r.onError != nil {
		r.onError(err)
	}
	r.failing = err != nil
	return n, err
}
