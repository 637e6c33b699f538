package tunnel

import (
	"sync"
	"sync/atomic"
	"time"
)

// workers runs the work of a connection that needs a deep stack (a handshake:
// the login's hash and the request's parser; a session's end: its last byte
// reports, metrics and the JSON accounting line) on goroutines that keep the
// stack they grew. A new goroutine starts with 2 KiB and grows by copying its
// stack, twice or three times, the first time it goes that deep: under churn
// that copying was 4–6% of the daemon's CPU (docs/performance.md). A goroutine
// that finished its work waits workerIdle for the next, at most maxIdleWorkers
// of them, and then ends; the garbage collector shrinks the stacks of those
// that wait long enough, as it does any goroutine's. The relay's own
// directions do not run here: a direction waits for bytes for the whole of its
// session, which must then hold a small stack (idle memory, item 6 of issue 24).
type workers struct {
	jobs chan func()   // unbuffered: a send succeeds only when a worker waits
	quit chan struct{} // closed by stop: waiting workers end, finishing ones do not wait
	idle atomic.Int32  // workers waiting for work
	made atomic.Int64  // workers started, for tests
	once sync.Once     // closes quit
}

const (
	// workerIdle is how long a worker waits for more work: long enough to
	// carry it from one session to the next under churn, short enough that a
	// burst's workers soon give their stacks back.
	workerIdle = 2 * time.Second
	// maxIdleWorkers bounds the waiting workers, and so the stacks they keep
	// (8–16 KiB each), after a burst of thousands of connections.
	maxIdleWorkers = 128
)

func newWorkers() *workers {
	return &workers{jobs: make(chan func()), quit: make(chan struct{})}
}

// Go runs f on a waiting worker, or on a new one when none waits.
func (w *workers) Go(f func()) {
	select {
	case w.jobs <- f:
	default:
		w.made.Add(1)
		go w.work(f)
	}
}

func (w *workers) work(f func()) {
	var t *time.Timer
	for {
		f()
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(workerIdle)
		} else {
			t.Reset(workerIdle)
		}
		select {
		case f = <-w.jobs:
			w.idle.Add(-1)
		case <-t.C:
			w.idle.Add(-1)
			return
		case <-w.quit:
			w.idle.Add(-1)
			t.Stop()
			return
		}
	}
}

// stop ends the waiting workers; later work still runs, each on a goroutine
// that ends with it.
func (w *workers) stop() { w.once.Do(func() { close(w.quit) }) }

// Go runs f on one of the core's workers: a goroutine that may have run a
// handshake or a session's end before and kept the stack it grew there. While
// f runs (a keep-alive connection's requests, say), its worker is busy.
func (c *Core) Go(f func()) { c.workers.Go(f) }

// StopWorkers ends the workers waiting for work, once the server has no
// connection left; work given after that runs on goroutines of its own.
func (c *Core) StopWorkers() { c.workers.stop() }
