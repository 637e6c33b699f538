package tunnel

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/usage"
)

// usageRecorder counts relayed bytes in a usage store, as the daemon's recorder
// does.
type usageRecorder struct {
	NopRecorder
	store *usage.Store
}

func (r usageRecorder) Transferred(user, _, direction, _ string, n int64) {
	if direction == "upload" {
		r.store.Add(user, n, 0)
	} else {
		r.store.Add(user, 0, n)
	}
}

// hiddenTCP hides a socket's type: the relay then has neither splice nor a
// readiness check on that side, as for a TLS client or an HTTP/2 stream.
type hiddenTCP struct{ net.Conn }

// TestRelayStopsAtAllowance relays an endless download for alice, under a
// refusing allowance of 3 MB, on each of the relay's paths: splice between
// two sockets, buffers when no pipe can be made, and the buffered copy of a
// client side that is not a socket. The store counts the allowance and at
// most a small read more, and the session is cut as quota.
func TestRelayStopsAtAllowance(t *testing.T) {
	const allowance = 3_000_000
	for _, tc := range []struct {
		name   string
		noPipe bool
		hidden bool
	}{{"splice", false, false}, {"no pipe", true, false}, {"not a socket", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configs.Defaults()
			cfg.Shaping = configs.Shaping{DefaultGroup: "all", Groups: map[string]configs.Limit{"all": {Quota: &configs.Quota{Daily: allowance}}}}
			store, err := usage.New(&cfg, usage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			log, logs := testLogger()
			core := New(testPolicy(t), Options{Logger: log, Recorder: usageRecorder{store: store}, Usage: store})
			if tc.noPipe {
				core.pipes = func() (*pipe, error) { return nil, syscall.EMFILE }
			}
			source := startTarget(t, func(c net.Conn) {
				buf := make([]byte, 64<<10)
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			})
			c := relayQuota(t, core, store, source, tc.hidden)
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			n, err := io.Copy(io.Discard, c)
			// A cut resets a socket; a side that is not one (here a wrapper
			// the cut cannot see through) is closed.
			if err == nil && !tc.hidden || n > allowance+16<<10 {
				t.Errorf("the client read %d bytes, then %v; want at most the allowance and a cut", n, err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(logs.String(), "close_reason=quota") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			var counted int64
			for _, u := range store.Report(time.Now(), true).Users {
				counted += u.Today.Total
			}
			if counted < allowance || counted > allowance+16<<10 {
				t.Errorf("counted %d bytes under an allowance of %d, want it and at most 16 KiB more", counted, allowance)
			}
			if !strings.Contains(logs.String(), "close_reason=quota") {
				t.Errorf("no session closed for its quota:\n%s", logs.String())
			}
		})
	}
}

// relayQuota is relayTo for a session admitted by store, its client side
// hidden from splice when hidden is set.
func relayQuota(t *testing.T, core *Core, store *usage.Store, target string, hidden bool) net.Conn {
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
	peer := AddrPortOf(proxySide.RemoteAddr())
	if hidden {
		proxySide = hiddenTCP{proxySide}
	}
	ended := make(chan struct{})
	conn := core.NewConn(proxySide, peer, ConnHooks{Ended: func() { close(ended) }})
	t.Cleanup(func() { conn.Abort(); <-ended })
	s := conn.NewSession("test")
	s.user = "alice"
	if s.quota, err = store.Admit("alice", "test", "connect"); err != nil {
		t.Fatal(err)
	}
	dst := netip.MustParseAddrPort(target)
	tc, o := s.Dial(Target{Addr: dst.Addr(), Port: dst.Port()})
	if !o.OK() {
		t.Fatalf("dial %s: %v %v", target, o.Refusal, o.Err)
	}
	s.Relay(tc, nil)
	return client
}
