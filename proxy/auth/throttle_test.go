package auth

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// fakeClock is a clock that tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)} }
func pairOf(addr, user string) pair {
	return pair{addr: addrKey(netip.MustParseAddr(addr)), user: user}
}
func testThrottleSettings() configs.AuthThrottle {
	return configs.AuthThrottle{FailuresPerUser: 3, FailuresPerAddress: 5, Window: time.Minute, RememberVerified: time.Hour}
}

// reserveOK reports whether a reservation of p's failure was granted.
func reserveOK(th *throttle, p pair) bool {
	tk := ticket{p: p}
	return th.reserve(&tk) == reserved
}

// step is one event in a throttle table test: an operation on a pair at a time
// offset, and what blocked or reserve must answer.
type step struct {
	at   time.Duration // since the start
	op   string        // fail, succeed, reserve, release, blocked
	addr string
	user string
	want bool // for reserve and blocked
}

func TestThrottle(t *testing.T) {
	const nat, other = "192.0.2.1", "192.0.2.2"
	failN := func(at time.Duration, addr, user string, n int) []step {
		s := make([]step, n)
		for i := range s {
			s[i] = step{at: at, op: "fail", addr: addr, user: user}
		}
		return s
	}
	cat := func(parts ...[]step) []step {
		var all []step
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	tests := []struct {
		name  string
		set   func(*configs.AuthThrottle)
		steps []step
	}{
		{"a user's failures block that user at that address only", nil, cat(
			failN(0, nat, "bob", 3),
			[]step{
				{op: "blocked", addr: nat, user: "bob", want: true},
				{op: "reserve", addr: nat, user: "bob", want: false},
				{op: "blocked", addr: nat, user: "alice", want: false},
				{op: "blocked", addr: other, user: "bob", want: false},
			})},
		{"the window forgets failures", nil, cat(
			failN(0, nat, "bob", 3),
			[]step{
				{at: 59 * time.Second, op: "blocked", addr: nat, user: "bob", want: true},
				{at: time.Minute, op: "blocked", addr: nat, user: "bob", want: false},
				{at: time.Minute, op: "fail", addr: nat, user: "bob"},
				{at: time.Minute, op: "blocked", addr: nat, user: "bob", want: false}, // a new window, one failure
			})},
		{"the address ceiling blocks every user of the address", nil, cat(
			failN(0, nat, "u1", 2), failN(0, nat, "u2", 2), failN(0, nat, "u3", 1),
			[]step{
				{op: "blocked", addr: nat, user: "carol", want: true},
				{op: "reserve", addr: nat, user: "carol", want: false},
				{op: "blocked", addr: other, user: "carol", want: false},
			})},
		{"a pair verified recently passes the address ceiling, not its own", nil, cat(
			[]step{{op: "succeed", addr: nat, user: "alice"}},
			failN(time.Second, nat, "u1", 2), failN(time.Second, nat, "u2", 2), failN(time.Second, nat, "u3", 1),
			[]step{
				{at: time.Second, op: "blocked", addr: nat, user: "alice", want: false},
				{at: time.Second, op: "reserve", addr: nat, user: "alice", want: true},
				{at: time.Second, op: "release", addr: nat, user: "alice"},
				{at: time.Second, op: "blocked", addr: nat, user: "carol", want: true},
			},
			failN(2*time.Second, nat, "alice", 3),
			[]step{{at: 2 * time.Second, op: "blocked", addr: nat, user: "alice", want: true}})},
		{"the exemption ends after remember_verified", nil, cat(
			[]step{{op: "succeed", addr: nat, user: "alice"}},
			failN(time.Hour, nat, "u1", 2), failN(time.Hour, nat, "u2", 2), failN(time.Hour, nat, "u3", 1),
			[]step{{at: time.Hour, op: "blocked", addr: nat, user: "alice", want: true}})},
		{"remember_verified 0 turns the exemption off", func(s *configs.AuthThrottle) { s.RememberVerified = 0 }, cat(
			[]step{{op: "succeed", addr: nat, user: "alice"}},
			failN(0, nat, "u1", 2), failN(0, nat, "u2", 2), failN(0, nat, "u3", 1),
			[]step{{op: "blocked", addr: nat, user: "alice", want: true}})},
		{"reservations count against the allowance until settled", nil, []step{
			{op: "reserve", addr: nat, user: "bob", want: true},
			{op: "reserve", addr: nat, user: "bob", want: true},
			{op: "reserve", addr: nat, user: "bob", want: true},
			{op: "reserve", addr: nat, user: "bob", want: false}, // three checks running: the allowance
			{op: "blocked", addr: nat, user: "bob", want: false}, // but nothing has failed yet
			{op: "release", addr: nat, user: "bob"},              // one could not be checked
			{op: "reserve", addr: nat, user: "bob", want: true},
		}},
		{"reservations count toward the address ceiling too", nil, []step{
			{op: "reserve", addr: nat, user: "u1", want: true},
			{op: "reserve", addr: nat, user: "u2", want: true},
			{op: "reserve", addr: nat, user: "u3", want: true},
			{op: "reserve", addr: nat, user: "u4", want: true},
			{op: "reserve", addr: nat, user: "u5", want: true},
			{op: "reserve", addr: nat, user: "u6", want: false},
			{op: "reserve", addr: other, user: "u6", want: true},
		}},
		{"an IPv6 client counts as its /64", nil, cat(
			failN(0, "2001:db8:1:2::1", "bob", 1), failN(0, "2001:db8:1:2:ffff::9", "bob", 2),
			[]step{
				{op: "blocked", addr: "2001:db8:1:2:abcd::1", user: "bob", want: true},
				{op: "blocked", addr: "2001:db8:1:3::1", user: "bob", want: false},
			})},
		{"an IPv4-mapped address is its IPv4 address", nil, cat(
			failN(0, "::ffff:192.0.2.1", "bob", 3),
			[]step{{op: "blocked", addr: nat, user: "bob", want: true}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			start := clock.t
			set := testThrottleSettings()
			if tc.set != nil {
				tc.set(&set)
			}
			th := newThrottle(set, clock.now)
			for i, s := range tc.steps {
				clock.t = start.Add(s.at)
				p := pairOf(s.addr, s.user)
				var got bool
				switch s.op {
				case "fail":
					th.fail(ticket{p: p})
				case "succeed":
					th.succeed(ticket{p: p})
				case "release":
					th.release(ticket{p: p, reserved: true})
				case "reserve":
					got = reserveOK(th, p)
				case "blocked":
					got = th.blocked(p)
				}
				if (s.op == "reserve" || s.op == "blocked") && got != s.want {
					t.Fatalf("step %d (%s %s %s at %v) = %v, want %v", i, s.op, s.addr, s.user, s.at, got, s.want)
				}
			}
		})
	}
}

// A reservation that becomes a failure or a success leaves no pending count, and
// an expired, settled entry is dropped, so the maps follow live guessing only.
func TestThrottleSettlesAndForgets(t *testing.T) {
	clock := newFakeClock()
	th := newThrottle(testThrottleSettings(), clock.now)
	p := pairOf("192.0.2.1", "bob")
	for range 2 {
		if !reserveOK(th, p) {
			t.Fatal("reserve refused")
		}
	}
	th.fail(ticket{p: p, reserved: true})
	th.succeed(ticket{p: p, reserved: true})
	if pt := th.pairs[p]; pt == nil || pt.pending != 0 || pt.failures != 1 {
		t.Fatalf("pair tally %+v, want 1 failure, 0 pending", pt)
	}
	if at := th.addrs[p.addr]; at == nil || at.pending != 0 || at.failures != 1 {
		t.Fatalf("address tally %+v, want 1 failure, 0 pending", at)
	}
	clock.add(time.Minute)
	reserveOK(th, p)
	th.release(ticket{p: p, reserved: true})
	if len(th.pairs) != 0 || len(th.addrs) != 0 {
		t.Errorf("expired, settled tallies kept: %d pairs, %d addresses", len(th.pairs), len(th.addrs))
	}
}

// Expired entries are dropped once the maps grow to pruneAt, which moves to twice
// the live entries (so a map of live ones is not walked on every failure, and
// memory stays within twice the peak of live guessing) and comes back down once
// they expire.
func TestThrottlePrunesExpiredEntries(t *testing.T) {
	clock := newFakeClock()
	th := newThrottle(testThrottleSettings(), clock.now)
	size := func() int { return len(th.pairs) + len(th.addrs) + len(th.verified) }
	for i := range minPruneAt {
		th.fail(ticket{p: pairOf(fmt.Sprintf("10.0.%d.%d", i/256, i%256), "u")})
	}
	if size() != 2*minPruneAt || th.pruneAt <= size() {
		t.Fatalf("%d live entries, pruneAt %d: want all kept and pruneAt above them", size(), th.pruneAt)
	}
	clock.add(2 * time.Hour)
	th.succeed(ticket{p: pairOf("192.0.2.9", "alice")})
	th.pruneAt = size() // as if the maps had grown to it
	th.prune(clock.now())
	if size() != 1 || th.pruneAt != minPruneAt {
		t.Errorf("after expiry: %d entries kept (want the one verified pair), pruneAt %d (want %d)", size(), th.pruneAt, minPruneAt)
	}
}

func TestThrottleSettingsChangeKeepsCounts(t *testing.T) {
	clock := newFakeClock()
	th := newThrottle(testThrottleSettings(), clock.now)
	p := pairOf("192.0.2.1", "bob")
	for range 3 {
		th.fail(ticket{p: p})
	}
	set := testThrottleSettings()
	set.FailuresPerUser = 4
	th.setSettings(set)
	if th.blocked(p) {
		t.Error("a raised allowance did not apply")
	}
	set.FailuresPerUser = 2
	th.setSettings(set)
	if !th.blocked(p) {
		t.Error("a lowered allowance did not apply to the counts so far")
	}
}

// TestThrottleEntries: an entry (a directory DN) has its own allowance of
// failures from an address, which its logins' reservations (on names, and on the
// address) do not touch, and its failures do not count on the address (its
// login's failure does).
func TestThrottleEntries(t *testing.T) {
	const nat = "192.0.2.1"
	set := testThrottleSettings()
	th := newThrottle(set, newFakeClock().now)
	for _, u := range []string{"u1", "u1", "u2", "u2", "u3"} {
		th.fail(ticket{p: pairOf(nat, u)})
	}
	entry := pair{addr: addrKey(netip.MustParseAddr(nat)), user: "uid=alice,ou=people", entry: true}
	for i := range set.FailuresPerUser {
		if !reserveOK(th, entry) {
			t.Fatalf("entry reservation %d refused over the address's allowance; an entry has its own", i)
		}
	}
	if reserveOK(th, entry) {
		t.Error("an entry's reservations passed its allowance")
	}
	before := th.current(th.addrs[entry.addr], th.now()).failures
	th.fail(ticket{p: entry, reserved: true})
	if after := th.current(th.addrs[entry.addr], th.now()).failures; after != before {
		t.Errorf("an entry's failure counted on the address: %d → %d (its login's failure counts there)", before, after)
	}
	if tl := th.pairs[entry]; tl == nil || tl.failures != 1 || tl.pending != set.FailuresPerUser-1 {
		t.Errorf("the entry's tally %+v; want 1 failure and the other reservations pending", tl)
	}
}

// TestThrottleOverAllowance: over the address's allowance, a user with no
// failures there needs a turn (and with one is reserved), a user with failures
// there is refused, and with over_allowance_interval 0 everyone is.
func TestThrottleOverAllowance(t *testing.T) {
	const nat = "192.0.2.1"
	set := testThrottleSettings()
	set.OverAllowanceInterval, set.OverAllowanceBurst = time.Second, 2
	th := newThrottle(set, newFakeClock().now)
	for _, u := range []string{"u1", "u1", "u2", "u2", "u3"} {
		th.fail(ticket{p: pairOf(nat, u)})
	}
	carol, u1 := pairOf(nat, "carol"), pairOf(nat, "u1")
	if th.blocked(carol) || !th.blocked(u1) {
		t.Fatalf("blocked: carol %v (no failures: want false), u1 %v (failed there: want true)", th.blocked(carol), th.blocked(u1))
	}
	tk := ticket{p: carol}
	if r := th.reserve(&tk); r != needsTurn || tk.reserved {
		t.Fatalf("carol without a turn: %v (reserved %v); want needsTurn", r, tk.reserved)
	}
	tk.turn = true
	if r := th.reserve(&tk); r != reserved || !tk.reserved {
		t.Fatalf("carol with a turn: %v; want reserved", r)
	}
	th.release(tk)
	if tk := (ticket{p: u1}); th.reserve(&tk) != refused {
		t.Error("u1, who failed there, was not refused over the allowance")
	}
	set.OverAllowanceInterval = 0
	th.setSettings(set)
	if !th.blocked(carol) {
		t.Error("over_allowance_interval 0: carol not blocked over the address's allowance")
	}
}
