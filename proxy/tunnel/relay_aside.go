package tunnel

import "time"

// aside runs c, one of the direction's bookkeeping steps, on a short-lived
// goroutine and waits for it. Moving a deadline runs the runtime's timer code,
// and reporting bytes runs the metrics and usage recorders; either, on top of a
// relay goroutine's own frames, grows its 2 KiB stack to 4 KiB, and Go does
// not shrink the stack of a goroutine parked in the poller back below that. An
// idle session would then hold 8 KiB of stacks instead of 4: 5,000 idle
// sessions measured 16.4 KiB each with the bookkeeping on the relay
// goroutines. The helper's stack grows instead and is freed when it returns;
// the cost is a goroutine start and a wake-up, at most once per slack period
// or report interval.
func (h *halfPipe) aside(c chore) {
	done := make(chan struct{})
	go h.runChore(c, done)
	<-done
}

// chore is a bookkeeping step that halfPipe.aside runs.
type chore int

const (
	moveDeadlines chore = iota // setDeadlines from now
	reportBytes                // flush
)

func (h *halfPipe) runChore(c chore, done chan<- struct{}) {
	defer close(done)
	// A panic in a recorder ends the session, as it did on the relay goroutine,
	// not the daemon.
	defer h.sess.core.Recover(h.sess.conn)
	switch c {
	case moveDeadlines:
		h.setDeadlines(time.Now())
	case reportBytes:
		h.flush()
	}
}
