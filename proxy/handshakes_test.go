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

	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// budgetUnderTest is a handshake budget with numbered owners and named clients.
type budgetUnderTest struct {
	t      *testing.T
	h      handshakeBudget
	rec    *countingRecorder
	b      Budgets
	owners []*client
	slots  []*handshakeSlot
}

// index returns owner's number.
func (u *budgetUnderTest) index(owner *client) int {
	for i, o := range u.owners {
		if o == owner {
			return i
		}
	}
	return -1
}

func newBudgetUnderTest(t *testing.T, b Budgets) *budgetUnderTest {
	u := &budgetUnderTest{t: t, rec: newCountingRecorder(), b: b}
	u.h.init(u.rec)
	return u
}

// admit connects owner number len(owners) from 10.0.0.from and checks which
// owner (-1: none) lost its slot.
func (u *budgetUnderTest) admit(from byte, wantVictim int) {
	u.t.Helper()
	owner := &client{}
	u.owners = append(u.owners, owner)
	s, v := u.h.admit(clientKey(netip.AddrFrom4([4]byte{10, 0, 0, from})), owner, u.b, stageSilent)
	u.slots = append(u.slots, s)
	got := -1
	if v != nil {
		got = u.index(v)
	}
	if got != wantVictim {
		u.t.Fatalf("connection %d from 10.0.0.%d evicted %d, want %d", len(u.owners)-1, from, got, wantVictim)
	}
}

func TestHandshakeBudgetEvictsOldestOfHeaviest(t *testing.T) {
	u := newBudgetUnderTest(t, Budgets{MaxHandshakes: 4, MaxHandshakesPerClient: 3})
	u.admit(1, -1) // 0
	u.admit(1, -1) // 1
	u.admit(1, -1) // 2
	u.admit(1, 0)  // 3: 10.0.0.1 is at its cap: its oldest goes
	u.admit(2, -1) // 4: the proxy is full now
	u.admit(3, 1)  // 5: 10.0.0.1 holds the most: its oldest goes, not 4
	u.admit(2, 2)  // 6: 10.0.0.1 still holds the most (2 and 3, against 4)
	if u.h.release(u.slots[0]) || u.h.release(u.slots[1]) {
		t.Error("release of an evicted slot reported held")
	}
	if c, g := u.rec.get("evicted client"), u.rec.get("evicted global"); c != 1 || g != 2 {
		t.Errorf("evictions counted: client %d, global %d; want 1, 2", c, g)
	}
	if u.h.active() != 4 || u.rec.get("handshakes") != 4 {
		t.Errorf("active %d, gauge %d; want 4, 4", u.h.active(), u.rec.get("handshakes"))
	}
}

func TestHandshakeBudgetEvictsSilentBeforeTalking(t *testing.T) {
	u := newBudgetUnderTest(t, Budgets{MaxHandshakes: 5, MaxHandshakesPerClient: 3})
	u.admit(1, -1) // 0
	u.admit(1, -1) // 1
	u.h.restage(u.slots[0], stageTalking)
	u.h.restage(u.slots[1], stageTalking)
	u.admit(2, -1) // 2
	u.admit(2, -1) // 3
	u.admit(1, -1) // 4: the proxy is full
	u.admit(1, 4)  // 5: 10.0.0.1 is at its cap: its silent one goes, not older talkers
	u.admit(3, 2)  // 6: 10.0.0.2 holds the most silent ones (2 and 3)
	u.h.restage(u.slots[5], stageTalking)
	u.h.restage(u.slots[6], stageTalking)
	u.admit(4, 3) // 7: 10.0.0.1 holds the most, but talking; 3 is the last silent
	u.h.restage(u.slots[7], stageTalking)
	u.h.restage(u.slots[7], stageTalking) // a second call changes nothing
	u.admit(5, 0)                         // 8: none silent: the oldest talker of the heaviest
	if u.h.active() != 5 {
		t.Errorf("active %d, want 5", u.h.active())
	}
}

// TestHandshakeBudgetEvictsIdleFirst: keep-alive connections waiting for their
// next request go before silent and talking handshakes, at a client's cap and at
// the proxy's, and the gauge follows each stage.
func TestHandshakeBudgetEvictsIdleFirst(t *testing.T) {
	u := newBudgetUnderTest(t, Budgets{MaxHandshakes: 5, MaxHandshakesPerClient: 3})
	u.admit(1, -1) // 0
	u.admit(1, -1) // 1
	u.admit(1, -1) // 2
	u.h.restage(u.slots[0], stageTalking)
	u.h.restage(u.slots[2], stageIdle) // a keep-alive connection between requests
	u.admit(1, 2)                      // 3: at 10.0.0.1's cap its idle one goes, before silent 1
	u.admit(2, -1)                     // 4
	u.admit(2, -1)                     // 5: the proxy is full
	u.h.restage(u.slots[4], stageIdle)
	u.admit(3, 4) // 6: 10.0.0.1 holds the most, but 10.0.0.2 holds the only idle one
	if got := u.rec.get("handshakes_" + stageName(stageIdle)); got != 0 {
		t.Errorf("idle gauge %d, want 0", got)
	}
	u.h.restage(u.slots[5], stageIdle)
	if got := u.rec.get("handshakes_" + stageName(stageIdle)); got != 1 {
		t.Errorf("idle gauge %d, want 1", got)
	}
	if !u.h.restage(u.slots[5], stageTalking) || u.h.restage(u.slots[4], stageTalking) {
		t.Error("restage reports a held slot as gone, or an evicted one as held")
	}
	if u.rec.get("handshakes") != 5 || u.rec.get("handshakes_"+stageName(stageTalking)) != 2 {
		t.Errorf("gauges %d in all, %d talking; want 5, 2", u.rec.get("handshakes"), u.rec.get("handshakes_"+stageName(stageTalking)))
	}
}

func TestHeaviest(t *testing.T) {
	var x heaviest
	a, b := clientKey(netip.MustParseAddr("10.0.0.1")), clientKey(netip.MustParseAddr("2001:db8::1"))
	if _, ok := x.top(); ok {
		t.Fatal("top of an empty index")
	}
	x.add(a, 1)
	x.add(b, 1)
	x.add(b, 1)
	if k, _ := x.top(); k != b {
		t.Errorf("top %v, want %v", k, b)
	}
	x.add(b, -1)
	x.add(b, -1)
	if k, _ := x.top(); k != a || x.max != 1 {
		t.Errorf("top %v max %d, want %v 1", k, x.max, a)
	}
	x.add(a, -1)
	if _, ok := x.top(); ok || len(x.at) != 0 {
		t.Errorf("index not empty: %+v", x)
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
		s, _ := h.admit(key, &client{}, b, stageSilent)
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
		// The core counts the login before the front writes its status: the
		// client gets the method reply, then a close.
		if got := exchange(t, h.addr, loggedIn()); !bytes.Equal(got, okAuth[:2]) {
			t.Errorf("panicking session answered %x, want %x and a close", got, okAuth[:2])
		}
	}
	waitFor(t, "sessions to end", func() bool { return h.srv.ActiveSessions() == 0 })
	if n, g := h.srv.ActiveHandshakes(), h.rec.get("handshakes"); n != 0 || g != 0 {
		t.Errorf("after panics: %d handshakes held, gauge %d; want 0", n, g)
	}
}

// BenchmarkHandshakeBudgetFlood is the accept loop's cost per connection when
// every new one evicts: a full budget of the largest derived size, 40 flooding
// addresses and a steady trickle of talking ones.
func BenchmarkHandshakeBudgetFlood(b *testing.B) {
	var h handshakeBudget
	h.init(tunnel.NopRecorder{})
	budget := Budgets{MaxHandshakes: maxHandshakes, MaxHandshakesPerClient: maxHandshakes / perClientDivisor}
	keys := make([]netip.Prefix, 4096)
	for i := range keys {
		keys[i] = clientKey(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))
	}
	owner := &client{}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s, _ := h.admit(keys[i%40], owner, budget, stageSilent)
		if i%16 == 0 {
			s, _ = h.admit(keys[40+i%(len(keys)-40)], owner, budget, stageSilent)
			h.restage(s, stageTalking)
		}
	}
}
