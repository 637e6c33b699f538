package tunnel

import (
	"sync"
	"testing"
	"time"
)

// TestWorkersReuseGoroutines: work given one piece after another runs on one
// goroutine; work given at once runs on as many as it needs; the waiting
// workers are bounded and end at stop, and work given after stop still runs.
func TestWorkersReuseGoroutines(t *testing.T) {
	w := newWorkers()
	for range 100 {
		done := make(chan struct{})
		w.Go(func() { close(done) })
		<-done
		waitFor(t, "the worker to wait again", func() bool { return w.idle.Load() == 1 })
	}
	// A worker counts itself waiting just before it waits: work given in
	// between starts a worker of its own, as it would without the pool.
	if n := w.made.Load(); n > 20 {
		t.Errorf("100 pieces of work one after another started %d workers, want few (1 but for races)", n)
	}

	const burst = maxIdleWorkers + 72
	made0 := w.made.Load()
	release := make(chan struct{})
	var running sync.WaitGroup
	running.Add(burst)
	for range burst {
		w.Go(func() { running.Done(); <-release })
	}
	running.Wait() // all at once: none waited for another
	close(release)
	waitFor(t, "the burst's workers to finish", func() bool { return w.idle.Load() == maxIdleWorkers })
	if made := w.made.Load() - made0; made < burst-1 {
		t.Errorf("%d pieces of work at once started %d workers, want at least %d: work waited for other work", burst, made, burst-1)
	}
	time.Sleep(50 * time.Millisecond)
	if n := w.idle.Load(); n != maxIdleWorkers {
		t.Errorf("%d workers wait after the burst, want the bound %d", n, maxIdleWorkers)
	}

	w.stop()
	waitFor(t, "the waiting workers to end", func() bool { return w.idle.Load() == 0 })
	done := make(chan struct{})
	w.Go(func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("work given after stop did not run")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
