package auth

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// countingRecorder counts a directory's metrics and the most connections it had
// open at once.
type countingRecorder struct {
	mu                 sync.Mutex
	requests           map[string]int
	errors             map[string]int
	open, maxOpen      int
	opened, closedConn int
}

func newCountingRecorder() *countingRecorder {
	return &countingRecorder{requests: map[string]int{}, errors: map[string]int{}}
}

func (r *countingRecorder) DirectoryRequest(op string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[op]++
}

func (r *countingRecorder) DirectoryError(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors[kind]++
}

func (r *countingRecorder) DirectoryConnOpened() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open++
	r.opened++
	r.maxOpen = max(r.maxOpen, r.open)
}

func (r *countingRecorder) DirectoryConnClosed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open--
	r.closedConn++
}

func (r *countingRecorder) get(m map[string]int, k string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return m[k]
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), "msg=\""+msg+"\"")
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }
