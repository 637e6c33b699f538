package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
	"github.com/sockshaper/sockshaper/shaping"
)

// streamForever is a target that writes until the connection fails.
func streamForever(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// TestTokenWaitIsNotIdleness queues a session behind 4 s of reservations on its
// user's bucket, with timeouts.idle at 1 s: the session must wait for its turn,
// not time out as idle, and then get bytes. Before, the wait counted as idleness
// and outlasted the read deadline, whose passing lost the tokens.
func TestTokenWaitIsNotIdleness(t *testing.T) {
	const rate = 2000
	sh := shaping.NewRegistry(configs.Shaping{DefaultGroup: "g",
		Groups: map[string]configs.Limit{"g": {Download: rate, Burst: 2 * rate}}})
	h := newHarness(t, "timeouts: {idle: 1s}\n", withShaper(sh))
	// Two reservations of the whole burst: the bucket is empty, then 2 s in debt.
	hog := sh.Acquire(shaping.Who{User: "alice"}, shaping.Other)
	defer hog.Release()
	var wg sync.WaitGroup
	defer wg.Wait()
	for range 2 {
		wg.Go(func() { hog.Download().Wait(context.Background(), 2*rate) })
	}
	time.Sleep(100 * time.Millisecond)
	c := dialVia(t, h.addr, "alice", startTarget(t, streamForever))
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(start.Add(6 * time.Second))
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("no byte after %v of waiting for tokens: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("first byte after %v; the test needs a wait longer than the idle timeout", waited)
	}
	if strings.Contains(h.logs.String(), "close_reason") {
		t.Fatalf("session ended while waiting for tokens:\n%s", h.logs.String())
	}
}

// TestStalledReaderEndsSession: clients that half-close and stop reading while
// the destination keeps sending (200 of them held their sessions, ~4 fds each,
// forever) are cut, with a reset, once their writes made no progress for
// timeouts.idle.
func TestStalledReaderEndsSession(t *testing.T) {
	h := newHarness(t, "timeouts: {idle: 1s}\n")
	target := startTarget(t, streamForever)
	const sessions = 50
	conns := make([]*net.TCPConn, sessions)
	for i := range conns {
		conns[i] = rawConnect(t, h.addr, target)
		conns[i].SetReadBuffer(4 << 10)
		conns[i].CloseWrite() // and never read
		defer conns[i].Close()
	}
	waitForWithin(t, 10*time.Second, "stalled sessions ended", func() bool { return h.srv.ActiveSessions() == 0 })
	if got := h.rec.get("reset stalled"); got != sessions {
		t.Errorf("sessions reset as stalled = %d, want %d", got, sessions)
	}
	if got := strings.Count(h.logs.String(), "close_reason=stalled"); got != sessions {
		t.Errorf("accounting lines with close_reason=stalled: %d, want %d", got, sessions)
	}
	// What the client gets when it reads at last: the bytes buffered for it,
	// then a reset, not an end of stream.
	conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, conns[0]); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read after the cut: %v, want a reset", err)
	}
}

// TestSlowReaderIsNotStalled: a client that reads slowly but steadily, so that
// the proxy's writes wait on full buffers for longer than timeouts.idle in all,
// keeps its session and gets every byte: only writes that make no progress for
// the idle timeout end a session.
func TestSlowReaderIsNotStalled(t *testing.T) {
	h := newHarness(t, "timeouts: {idle: 300ms}\n")
	payload := make([]byte, 16<<20)
	rand.Read(payload)
	target := startTarget(t, sendThenClose(payload))
	c := rawConnect(t, h.addr, target)
	defer c.Close()
	s := sha256.New()
	buf := make([]byte, 64<<10)
	start := time.Now()
	for {
		n, err := c.Read(buf)
		s.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read after %v: %v", time.Since(start), err)
		}
		time.Sleep(10 * time.Millisecond) // at most 6.4 MB/s: 2.6 s for 16 MiB
	}
	if want := sha256.Sum256(payload); [32]byte(s.Sum(nil)) != want {
		t.Fatal("payload corrupted")
	}
	if got := h.rec.get("reset stalled"); got != 0 {
		t.Errorf("a reading client's session was reset as stalled")
	}
}

// TestVerySlowReaderIsNotIdle: a client that takes 16 KiB every 200 ms for 2.6
// s keeps the proxy's writes to it blocked for longer than timeouts.idle at a
// time (the kernel's buffers on the way are full, and it wakes a writer only
// once much of them is free), while its own direction sends nothing. A write
// under way is not idleness, and a peer that acknowledges bytes is not stalled:
// the session goes on to its end and the client gets every byte. (The relay
// used to end such a session as idle, with a clean close the client took for
// the end of a whole transfer, or as stalled, with a reset.)
func TestVerySlowReaderIsNotIdle(t *testing.T) {
	h := newHarness(t, "timeouts: {idle: 1s}\n")
	payload := make([]byte, 16<<20) // more than the kernel's buffers hold on the way
	rand.Read(payload)
	target := startTarget(t, sendThenClose(payload))
	c := rawConnect(t, h.addr, target)
	defer c.Close()
	s := sha256.New()
	buf := make([]byte, 16<<10)
	var got int
	for {
		n, err := c.Read(buf)
		s.Write(buf[:n])
		got += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got, err)
		}
		time.Sleep(200 * time.Millisecond)
		if got > 208<<10 { // 2.6 s of slow reads
			// Enough slow rounds to have ended the session as idle; the
			// rest at once.
			rest, err := io.ReadAll(c)
			s.Write(rest)
			got += len(rest)
			if err != nil {
				t.Fatalf("read after %d bytes: %v", got, err)
			}
			break
		}
	}
	if want := sha256.Sum256(payload); got != len(payload) || [32]byte(s.Sum(nil)) != want {
		t.Fatalf("got %d of %d bytes (or corrupted): the slow reader's session was ended early", got, len(payload))
	}
}

// waitForWithin polls cond for up to d.
func waitForWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// panicOnTransfer is a recorder whose byte reports panic, as a bug in a metrics
// or usage recorder would.
type panicOnTransfer struct{ *countingRecorder }

func (panicOnTransfer) Transferred(string, string, string, string, int64) { panic("recorder bug") }

// TestTimedReportPanicEndsOnlyItsSession lets a session pause past its read
// deadline, so that its bytes are reported by the relay's short-lived helper
// goroutine, with a recorder that panics there: the session ends, and the
// daemon goes on serving (an unrecovered panic on the helper would end the
// whole process, and this test with it).
func TestTimedReportPanicEndsOnlyItsSession(t *testing.T) {
	h := newHarness(t, "timeouts: {idle: 1s}\n", func(o *Options) {
		o.Recorder = panicOnTransfer{o.Recorder.(*countingRecorder)}
	})
	target := startTarget(t, echo)
	for i := range 2 {
		c := dialVia(t, h.addr, "alice", target)
		msg := []byte("ping")
		c.Write(msg)
		if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
			t.Fatalf("session %d: echo: %v", i, err)
		}
		// The relay wakes at its 1 s read deadline and reports the 4 bytes aside.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || tunnel.IsTimeout(err) {
			t.Fatalf("session %d: read after the panicking report = %v, want the session closed", i, err)
		}
		c.Close()
	}
	if !strings.Contains(h.logs.String(), "session panic") {
		t.Errorf("no session panic logged:\n%s", h.logs.String())
	}
}
