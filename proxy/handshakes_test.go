package proxy

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"
)

func TestHandshakeBudgetEvictsOldest(t *testing.T) {
	rec := newCountingRecorder()
	var h handshakeBudget
	h.init(rec)
	b := Budgets{MaxHandshakes: 4, MaxHandshakesPerClient: 2}
	a, c := clientKey(netip.MustParseAddr("10.0.0.1")), clientKey(netip.MustParseAddr("10.0.0.2"))
	owners := make([]*session, 8)
	for i := range owners {
		owners[i] = &session{id: uint64(i)}
	}
	admit := func(key netip.Prefix, i int) (*handshakeSlot, *session) { return h.admit(key, owners[i], b) }

	s0, v := admit(a, 0)
	s1, _ := admit(a, 1)
	if v != nil || h.active() != 2 {
		t.Fatalf("under the caps: victim %v, active %d", v, h.active())
	}
	// a is at its cap: its oldest (0) makes room, not c's.
	if _, v = admit(a, 2); v != owners[0] {
		t.Fatalf("client cap: victim %v, want session 0", v)
	}
	if h.release(s0) {
		t.Error("release of an evicted slot reported held")
	}
	admit(c, 3)
	admit(c, 4) // total 4: a has 1 and 2, c has 3 and 4
	// The proxy is at its cap; the new client's connection replaces the oldest of all.
	if _, v = admit(clientKey(netip.MustParseAddr("10.0.0.3")), 5); v != owners[1] {
		t.Fatalf("global cap: victim %v, want session 1", v)
	}
	if h.release(s1) {
		t.Error("second release reported held")
	}
	if got := rec.get("evicted client") + rec.get("evicted global"); got != 2 || rec.get("evicted global") != 1 {
		t.Errorf("evictions counted: client %d, global %d; want 1, 1", rec.get("evicted client"), rec.get("evicted global"))
	}
	if h.active() != 4 || rec.get("handshakes") != 4 {
		t.Errorf("active %d, gauge %d; want 4, 4", h.active(), rec.get("handshakes"))
	}
}

func TestHandshakeBudgetEvictsSilentBeforeTalking(t *testing.T) {
	var h handshakeBudget
	h.init(newCountingRecorder())
	b := Budgets{MaxHandshakes: 3, MaxHandshakesPerClient: 3}
	key := clientKey(netip.MustParseAddr("10.0.0.1"))
	owners := []*session{{id: 0}, {id: 1}, {id: 2}, {id: 3}, {id: 4}}
	talker, _ := h.admit(key, owners[0], b) // the oldest, but it has spoken
	h.talking(talker)
	h.admit(key, owners[1], b)
	h.admit(key, owners[2], b)
	for _, want := range []*session{owners[1], owners[2]} {
		if _, v := h.admit(key, owners[3], b); v != want {
			t.Fatalf("victim %v, want the oldest silent one %v", v, want)
		}
	}
	// Only talking ones left besides the newest silent: that one goes first.
	_, v := h.admit(key, owners[4], b)
	if v != owners[3] {
		t.Fatalf("victim %v, want the silent %v", v, owners[3])
	}
	h.talking(talker) // a second call changes nothing
	if h.active() != 3 || !talker.held {
		t.Errorf("active %d, talker held %v", h.active(), talker.held)
	}
}

func TestHandshakeBudgetReleaseOnce(t *testing.T) {
	rec := newCountingRecorder()
	var h handshakeBudget
	h.init(rec)
	b := Budgets{MaxHandshakes: 100, MaxHandshakesPerClient: 100}
	key := clientKey(netip.MustParseAddr("10.0.0.1"))
	var wg sync.WaitGroup
	for range 50 {
		s, _ := h.admit(key, &session{}, b)
		wg.Add(3)
		for range 3 { // the handshake's end, finish and a racing release
			go func() { defer wg.Done(); h.release(s) }()
		}
	}
	wg.Wait()
	if h.active() != 0 || rec.get("handshakes") != 0 || len(h.byClient) != 0 {
		t.Errorf("after releases: active %d, gauge %d, clients %d; want 0", h.active(), rec.get("handshakes"), len(h.byClient))
	}
	if h.release(nil) {
		t.Error("release(nil) reported held")
	}
}

// dialerFrom connects from a given loopback source address.
func dialerFrom(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
}

// slowloris holds n silent connections from ip to addr and reopens each one the
// proxy closes 200 ms later (sooner only makes the test CPU-bound), until stop is
// closed.
func slowloris(t *testing.T, addr, ip string, n int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	d := dialerFrom(ip)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := d.Dial("tcp", addr)
				if err == nil {
					go func() { <-stop; c.Close() }()
					io.Copy(io.Discard, c) // returns when the proxy closes it
					c.Close()
				}
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
	}
	return &wg
}

// TestSlowlorisBehindSharedAddressDoesNotLockOutUsers is issue 10's "512 idle
// handshakes from one address blocked 97% of a real user's connections there": a
// campus NAT address carries both. Each real connection takes the place of the
// oldest silent one.
func TestSlowlorisBehindSharedAddressDoesNotLockOutUsers(t *testing.T) {
	h := newHarness(t, "timeouts: {handshake: 30s}\n")
	target := startTarget(t, echo)
	const nat = "127.0.0.7"
	stop := make(chan struct{})
	attackers := slowloris(t, h.addr, nat, 600, stop)
	defer func() { close(stop); attackers.Wait() }()
	// Past the address's cap, so that silent connections are being evicted and
	// reopened while the real user connects.
	waitFor(t, "the slowloris to fill the address's budget", func() bool { return h.rec.get("evicted client") >= 600 })

	socks, err := xproxy.SOCKS5("tcp", h.addr, &xproxy.Auth{User: "alice", Password: testPassword}, dialerFrom(nat))
	if err != nil {
		t.Fatal(err)
	}
	const tries = 100
	ok := 0
	for i := range tries {
		c, err := socks.Dial("tcp", target)
		if err != nil {
			t.Logf("connection %d: %v", i, err)
			continue
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		msg := []byte("ping")
		c.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err == nil && bytes.Equal(got, msg) {
			ok++
		}
		c.Close()
	}
	t.Logf("%d of %d real connections from %s succeeded; %d silent ones evicted", ok, tries, nat, h.rec.get("evicted client"))
	if ok < tries*95/100 {
		t.Errorf("%d of %d real connections succeeded behind a slowloris; want at least 95%%", ok, tries)
	}
	// Every handshake left is the slowloris's, all from one address.
	if n, limit := h.srv.ActiveHandshakes(), h.srv.Budgets().MaxHandshakesPerClient; n > limit {
		t.Errorf("handshakes of %s: %d, above max_handshakes_per_client_ip %d", nat, n, limit)
	}
}

// panicOnAuth makes the session's goroutine panic in the middle of its handshake.
type panicOnAuth struct{ *countingRecorder }

func (panicOnAuth) AuthAttempt(string) { panic("recorder bug") }

func TestHandshakeSlotReleasedOnPanic(t *testing.T) {
	h := newHarness(t, "", func(o *Options) { o.Recorder = panicOnAuth{o.Recorder.(*countingRecorder)} })
	for range 3 {
		// The login's status is written before it is counted, where it panics.
		if got := exchange(t, h.addr, loggedIn()); !bytes.Equal(got, okAuth) {
			t.Errorf("panicking session answered %x, want %x and a close", got, okAuth)
		}
	}
	waitFor(t, "sessions to end", func() bool { return h.srv.ActiveSessions() == 0 })
	if n, g := h.srv.ActiveHandshakes(), h.rec.get("handshakes"); n != 0 || g != 0 {
		t.Errorf("after panics: %d handshakes held, gauge %d; want 0", n, g)
	}
}
