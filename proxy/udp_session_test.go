package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
	"github.com/sockshaper/sockshaper/shaping"
)

func TestUDPAssociateRefused(t *testing.T) {
	h := newHarness(t, "access: {udp_associate: false}\n")
	got := exchange(t, h.addr, cat(loggedIn(), requestMsg(3, "0.0.0.0", 0)))
	if want := cat(okAuth, failReply(replyNotAllowed)); !bytes.Equal(got, want) {
		t.Errorf("udp_associate off: got %x, want %x", got, want)
	}
	waitFor(t, "refusal", func() bool { return h.rec.get("rejected udp_associate other command_refused") == 1 })
}

func TestUDPAssociatePerUserLimit(t *testing.T) {
	h := newHarness(t, "limits: {max_sessions_per_user: 1}\n")
	associateUDP(t, h.addr, false)
	got := exchange(t, h.addr, cat(loggedIn(), requestMsg(3, "0.0.0.0", 0)))
	if want := cat(okAuth, failReply(replyNotAllowed)); !bytes.Equal(got, want) {
		t.Errorf("second association of alice: got %x, want %x", got, want)
	}
	waitFor(t, "limit", func() bool { return h.rec.get("rejected udp_associate other limit_reached") == 1 })
}

func TestUDPControlCloseEndsAssociation(t *testing.T) {
	h := newHarness(t, "")
	echo := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	c.expectEcho(echo, "127.0.0.1", "before")
	c.ctl.Close()
	waitFor(t, "session close", func() bool { return h.rec.get("closed udp_associate other ok") == 1 })
	// The relay socket is gone: a connected socket hears the port unreachable.
	probe, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(c.relay))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	probe.SetDeadline(time.Now().Add(time.Second))
	probe.Write(udpMsg(echo.addr, "after"))
	if _, err := probe.Read(make([]byte, 100)); err == nil {
		t.Fatal("the relay answered after the control connection closed")
	}
	if n := echo.got.Load(); n != 1 {
		t.Errorf("echo received %d datagrams, want 1", n)
	}
}

func TestUDPIdleEndsAssociation(t *testing.T) {
	h := newHarness(t, "timeouts: {idle: 400ms}\n")
	echo := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	for range 4 { // traffic keeps it open past the idle time...
		time.Sleep(150 * time.Millisecond)
		c.expectEcho(echo, "127.0.0.1", "keepalive")
	}
	c.ctl.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c.ctl); err != nil { // ...silence closes it
		t.Fatalf("idle association not closed: %v", err)
	}
	waitFor(t, "accounting line", func() bool { return strings.Contains(h.logs.String(), "close_reason=idle") })
}

func TestUDPControlDataEndsAssociation(t *testing.T) {
	h := newHarness(t, "")
	c := associateUDP(t, h.addr, false)
	c.ctl.Write([]byte("x"))
	c.ctl.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c.ctl); err != nil {
		t.Fatalf("association not closed after data on the control connection: %v", err)
	}
	waitFor(t, "session close", func() bool { return h.rec.get("closed udp_associate other ok") == 1 })
}

func TestUDPShutdownClosesAssociation(t *testing.T) {
	h := newHarness(t, "")
	echo := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	c.expectEcho(echo, "127.0.0.1", "before shutdown")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded after closing the association", err)
	}
	waitFor(t, "accounting line", func() bool { return strings.Contains(h.logs.String(), "close_reason=shutdown") })
}

// TestUDPShapingDropsBurst: a burst over the user's download bucket is partly
// dropped, never queued, while the unlimited upload passes whole.
func TestUDPShapingDropsBurst(t *testing.T) {
	const sent, size = 20, 1000
	sh := shaping.NewRegistry(configs.Shaping{
		DefaultGroup: "students",
		Groups:       map[string]configs.Limit{"students": {Download: 1000, Burst: 4 * size}},
	})
	h := newHarness(t, "", withShaper(sh))
	echo := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	payload := strings.Repeat("m", size)
	for range sent {
		c.send("127.0.0.1", echo.addr.Port(), payload)
	}
	waitFor(t, "echo got the burst", func() bool { return echo.got.Load() == sent })
	received := 0
	for {
		if _, ok := c.recv(300 * time.Millisecond); !ok {
			break
		}
		received++
	}
	// The 4 KiB burst lets 4 datagrams through; at 1000 B/s the bucket refills one
	// more each second the test takes.
	if received < 4 || received > 6 {
		t.Errorf("client received %d of %d datagrams, want the burst's 4 (or a refill more)", received, sent)
	}
	c.ctl.Close()
	waitFor(t, "drop summary", func() bool { return strings.Contains(h.logs.String(), "udp datagrams dropped") })
	if want := int64(received * size); h.rec.get("bytes other download udp") != want {
		t.Errorf("download bytes %d, want %d (dropped datagrams are not counted)", h.rec.get("bytes other download udp"), want)
	}
}

// BenchmarkUDPRelay measures one round trip through the relay to an echo server;
// allocs/op covers the proxy too, which must not allocate per datagram.
func BenchmarkUDPRelay(b *testing.B) {
	fast := configs.Shaping{Global: configs.Limit{Upload: 1 << 30, Download: 1 << 30}}
	b.Run("unshaped", func(b *testing.B) { benchmarkUDPRelay(b, nil) })
	b.Run("shaped", func(b *testing.B) { benchmarkUDPRelay(b, shaping.NewRegistry(fast)) })
}

func benchmarkUDPRelay(b *testing.B, sh *shaping.Registry) {
	cfg := loadTestConfig(b, testConfig)
	srv := New(cfg, loadUsers(b, cfg), Options{Options: tunnel.Options{Shaper: sh}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	b.Cleanup(func() { srv.Close(); <-done })
	echo := startUDPEcho(b, "127.0.0.1")
	c := associateUDP(b, ln.Addr().String(), false)
	msg := udpMsg(echo.addr, strings.Repeat("p", 1200))
	buf := make([]byte, 2048)
	c.udp.SetReadDeadline(time.Now().Add(time.Minute))
	b.SetBytes(1200)
	b.ReportAllocs()
	for b.Loop() {
		c.udp.WriteToUDPAddrPort(msg, c.relay)
		if _, _, err := c.udp.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUDPRelayPath measures each direction of the relay alone, one datagram
// per iteration: client to peer (header parsed, policy, bucket, send) and peer to
// client (header written in front, send). allocs/op covers the whole process,
// the benchmark's own sockets included, and must be 0: an association reads
// each datagram into a buffer lent for that datagram and allocates nothing.
func BenchmarkUDPRelayPath(b *testing.B) {
	fast := configs.Shaping{Global: configs.Limit{Upload: 1 << 40, Download: 1 << 40}}
	for _, sh := range []struct {
		name string
		reg  *shaping.Registry
	}{{"unshaped", nil}, {"shaped", shaping.NewRegistry(fast)}} {
		b.Run("client_to_peer/"+sh.name, func(b *testing.B) { benchmarkUDPPath(b, sh.reg, true) })
		b.Run("peer_to_client/"+sh.name, func(b *testing.B) { benchmarkUDPPath(b, sh.reg, false) })
	}
}

func benchmarkUDPPath(b *testing.B, sh *shaping.Registry, up bool) {
	h := newHarness(b, "", withShaper(sh))
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	c := associateUDP(b, h.addr, false)
	peerAddr := tunnel.AddrPortOf(peer.LocalAddr())
	payload := strings.Repeat("p", 1200)
	msg := udpMsg(peerAddr, payload)
	buf := make([]byte, 2048)
	deadline := time.Now().Add(time.Minute)
	peer.SetReadDeadline(deadline)
	c.udp.SetReadDeadline(deadline)
	// The first datagram locks the client's port and lets the peer answer.
	c.sendRaw(msg)
	if _, _, err := peer.ReadFromUDPAddrPort(buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if up {
			c.udp.WriteToUDPAddrPort(msg, c.relay)
			_, _, err = peer.ReadFromUDPAddrPort(buf)
		} else {
			peer.WriteToUDPAddrPort(msg[:len(payload)], c.relay)
			_, _, err = c.udp.ReadFromUDPAddrPort(buf)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
