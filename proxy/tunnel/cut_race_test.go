package tunnel

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestASecondCutStillResetsTheClient: of two cuts of one connection at once
// (a quota event cutting a user's sessions while their relay finds the
// allowance used up), the one that finds the reason taken must still reach the
// client as a reset, never as a clean end it would take for a complete
// transfer. It once closed the socket at once, while the first cut, past its
// choice of reason, had not yet armed the reset: the test stops the first cut
// there (its reason stored, nothing armed) and runs the second.
func TestASecondCutStillResetsTheClient(t *testing.T) {
	core := New(testPolicy(t), Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, reason := range []string{ReasonError, ReasonShutdown, ReasonStalled} {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		proxySide, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		conn := core.NewConn(proxySide, AddrPortOf(proxySide.RemoteAddr()), ConnHooks{})
		first := "quota"
		conn.cutBy.Store(&first) // the first cut, paused past its choice of reason
		conn.Cut(reason)
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = client.Read(make([]byte, 1))
		if !errors.Is(err, syscall.ECONNRESET) {
			clean := errors.Is(err, io.EOF)
			t.Errorf("a second cut (%s): the client read %v (clean end: %v), want a reset", reason, err, clean)
		}
		if got := *conn.cutBy.Load(); got != first {
			t.Errorf("the session's reason after a second cut: %q, want the first's %q", got, first)
		}
	}
}
