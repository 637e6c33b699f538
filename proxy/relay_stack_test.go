// The race detector enlarges every frame, so stacks grow under it whatever the
// relay does: this test is for the build that runs, and scripts/test.sh runs it
// without -race.

//go:build !race

package proxy

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// maxIdleHeap bounds the heap an idle session holds in
// TestIdleRelayStacksStaySmall, a little above what issue 24 reached.
const maxIdleHeap = 6900 // 7.2–7.4 KB before issue 24, 6.4 KB after

// TestIdleRelayStacksStaySmall opens sessions that each exchanged one message
// and then idle past the relay's periodic wake (it reports bytes and moves its
// deadlines every 5 s), and checks the goroutine stacks a session holds. Each
// relay direction is a goroutine whose stack starts at 2 KiB; the runtime's
// timer code behind a deadline change and the metrics behind a byte report
// grew it to 4 KiB, and Go keeps that size while the goroutine waits in the
// poller, so an idle session held 8 KiB of relay stacks where 4 suffice. The
// relay runs that bookkeeping on short-lived goroutines instead.
func TestIdleRelayStacksStaySmall(t *testing.T) {
	if testing.Short() {
		t.Skip("waits past the 5 s report interval")
	}
	const n = 300
	h := newHarness(t, "timeouts: {idle: 30s}\nlimits: {max_sessions: 1000, max_sessions_per_client_ip: 1000, max_sessions_per_user: 1000}\n",
		withMetrics())
	// The target answers once and then waits in a read with a shallow stack, like
	// the client side: what grows per session is the proxy's.
	target := startTarget(t, func(c net.Conn) {
		buf := make([]byte, 64)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		c.Write(buf)
		c.Read(buf)
	})
	msg, reply := make([]byte, 64), make([]byte, 64)
	stacks0, g0, heap0 := stackInUse()
	conns := make([]net.Conn, n)
	for i := range conns {
		c := dialVia(t, h.addr, "alice", target)
		defer c.Close()
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, reply); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	// Past one report interval: every relay direction has woken on its read
	// deadline, reported its bytes and set new deadlines.
	time.Sleep(6 * time.Second)
	stacks1, g1, heap1 := stackInUse()
	perSession := (stacks1 - stacks0) / n
	heapPerSession := (heap1 - heap0) / n
	t.Logf("%d idle sessions: %d goroutines, %d B of stacks and %d B of heap each (2 relay goroutines in the proxy, 1 in the test's target; both ends' sockets)",
		n, (g1-g0)/n, perSession, heapPerSession)
	if g := (g1 - g0) / n; g != 3 {
		t.Fatalf("%d goroutines a session, want 3", g)
	}
	// Three goroutines at 2 KiB each; with 4 KiB relay stacks it was 10 KiB.
	if limit := int64(8 << 10); perSession > limit {
		t.Errorf("each idle session holds %d B of goroutine stacks, want at most %d", perSession, limit)
	}
	// The heap of a session, the test's client and target included. Issue 24
	// took the logger clones (a handler and its formatted attributes per
	// connection and per login) and the write probes' TCP_INFO buffers (two
	// of a few hundred bytes) out of it.
	if limit := int64(maxIdleHeap); heapPerSession > limit {
		t.Errorf("each idle session holds %d B of heap, want at most %d", heapPerSession, limit)
	}
}

// stackInUse returns the bytes of goroutine stacks in use after a collection
// (which shrinks the stacks it can), the number of goroutines and the bytes of
// live heap objects.
func stackInUse() (bytes, goroutines, heap int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.StackInuse), int64(runtime.NumGoroutine()), int64(ms.HeapAlloc)
}
