package tunnel

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/shaping"
)

// testPolicy is a policy that allows loopback destinations, with timeouts short
// enough for tests.
func testPolicy(t testing.TB) *Policy {
	t.Helper()
	cfg := configs.Defaults()
	cfg.Access.DenyDestinations = []string{"private", "link-local", "metadata"}
	cfg.Timeouts.Idle = 5e9
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &Policy{Config: &cfg, Classifier: shaping.NewClassifier(cfg.Apps)}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// relayTo connects a client to target through a session of core, as a front
// does after a CONNECT, and returns the client's side. The connection ends with
// the relay; the test closes the client.
func relayTo(t testing.TB, core *Core, target string) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	proxySide, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	conn := core.NewConn(proxySide, AddrPortOf(proxySide.RemoteAddr()), ConnHooks{Ended: func() { close(ended) }})
	t.Cleanup(func() { conn.Abort(); <-ended })
	s := conn.NewSession("test")
	s.user = "alice"
	dst := netip.MustParseAddrPort(target)
	tc, o := s.Dial(Target{Addr: dst.Addr(), Port: dst.Port()})
	if !o.OK() {
		t.Fatalf("dial %s: %v %v", target, o.Refusal, o.Err)
	}
	s.Relay(tc, nil)
	return client
}

// startTarget runs a TCP server on 127.0.0.1:0 that hands each connection to serve.
func startTarget(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); serve(c) })
		}
	})
	return ln.Addr().String()
}

// testLogger logs into a buffer the test can read.
func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// drain reads c to its end.
func drain(c net.Conn) ([]byte, error) { return io.ReadAll(c) }
