package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// campusEvents collects what happens between two window edges: the short
// sessions, logins, errors, guesses and slowloris closes. The zero value is not
// usable; use [newCampusEvents]. Safe for concurrent use.
type campusEvents struct {
	mu sync.Mutex
	w  windowEvents
	// slowOpen is the slowloris connections open now, a gauge across windows;
	// keepOpen the keep-alive connections.
	slowOpen atomic.Int64
	keepOpen atomic.Int64
}

// windowEvents is one window's share of campusEvents.
type windowEvents struct {
	browsed     int             // short sessions completed
	browseBytes int64           // their bytes received by the clients
	logins      []time.Duration // real logins: connect to the request's reply
	sessions    []time.Duration // short sessions: connect to close
	errors      map[string]int  // by kind: "population step: cause"
	guesses     map[string]int  // by outcome
	guessTimes  []time.Duration // connect to the login's answer
	slowClosed  []time.Duration // slowloris connections the proxy closed: how long they were held
	keepAnswers map[string]int  // answers to keep-alive requests, by status
	keepClosed  []time.Duration // keep-alive connections the proxy closed: how long they were held
}

// newWindowEvents returns an empty window.
func newWindowEvents() windowEvents {
	return windowEvents{errors: map[string]int{}, guesses: map[string]int{}, keepAnswers: map[string]int{}}
}

func newCampusEvents() *campusEvents {
	return &campusEvents{w: newWindowEvents()}
}

// take returns the events since the last take and starts a new window.
func (e *campusEvents) take() windowEvents {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.w
	e.w = newWindowEvents()
	return w
}

// login records a real user's handshake.
func (e *campusEvents) login(d time.Duration) {
	e.mu.Lock()
	e.w.logins = append(e.w.logins, d)
	e.mu.Unlock()
}

// browsed records a short session that completed, its handshake and its length.
func (e *campusEvents) browsed(login, whole time.Duration, bytes int) {
	e.mu.Lock()
	e.w.browsed++
	e.w.browseBytes += int64(bytes)
	e.w.logins = append(e.w.logins, login)
	e.w.sessions = append(e.w.sessions, whole)
	e.mu.Unlock()
}

// fail counts err under its kind for population pop.
func (e *campusEvents) fail(pop string, err error) {
	kind := fmt.Sprintf("%s %s: %s", pop, errStep(err), errCause(err))
	e.mu.Lock()
	e.w.errors[kind]++
	e.mu.Unlock()
}

// guess records the outcome of one password guess and how long its answer took.
func (e *campusEvents) guess(outcome string, d time.Duration) {
	e.mu.Lock()
	e.w.guesses[outcome]++
	if outcome != "dial" {
		e.w.guessTimes = append(e.w.guessTimes, d)
	}
	e.mu.Unlock()
}

// slowClosed records a slowloris connection the proxy closed after d.
func (e *campusEvents) slowClosed(d time.Duration) {
	e.mu.Lock()
	e.w.slowClosed = append(e.w.slowClosed, d)
	e.mu.Unlock()
}

// errCause names what went wrong in err, for error kinds and guess outcomes.
func errCause(err error) string {
	if re, ok := errors.AsType[replyError](err); ok {
		return fmt.Sprintf("reply %#02x", byte(re))
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, errRejected):
		return "rejected"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return "no free port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "out of descriptors"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	}
	return "other"
}

// addCounts adds src's counts to dst.
func addCounts(dst, src map[string]int) {
	for k, v := range src {
		dst[k] += v
	}
}

// cloneCounts returns a copy of m, or nil when m is empty (omitted from JSON).
func cloneCounts(m map[string]int) map[string]int {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
