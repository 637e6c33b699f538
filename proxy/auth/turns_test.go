package auth

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

var natAddr = addrKey(netip.MustParseAddr("192.0.2.1"))

// turnTaker takes turns on goroutines and reports, in order, which got one.
type turnTaker struct {
	th  *throttle
	got chan string
}

func newTurnTaker(burst int) *turnTaker {
	set := turnSettings()
	set.OverAllowanceBurst = burst
	return &turnTaker{th: newThrottle(set, time.Now), got: make(chan string, 100)}
}

// take starts a login named who, with password key pw, waiting up to budget.
func (tt *turnTaker) take(who string, pw uint64, budget time.Duration) {
	go func() {
		if tt.th.takeTurn(context.Background(), natAddr, pw, budget) {
			tt.got <- who
		} else {
			tt.got <- who + " gave up"
		}
	}()
	synctest.Wait() // it has its turn, or waits in line
}

// settle ends a turn as a right password (true) or a wrong one with key pw.
func (tt *turnTaker) settle(right bool, pw uint64) {
	tt.th.mu.Lock()
	tt.th.settle(ticket{turn: true, pw: pw, p: pair{addr: natAddr}}, right)
	tt.th.mu.Unlock()
	synctest.Wait()
}

// expect checks who got a turn since the last call, in order.
func (tt *turnTaker) expect(t *testing.T, when string, want ...string) {
	t.Helper()
	var got []string
	for len(tt.got) > 0 {
		got = append(got, <-tt.got)
	}
	if len(got) != len(want) || len(want) > 0 && !equalStrings(got, want) {
		t.Fatalf("%s: turns went to %q; want %q", when, got, want)
	}
}

func equalStrings(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// TestTurns: the burst is taken at once; then a right password hands its turn to
// the login first in line at once, a wrong one spends it, and turns accrue one a
// second, first come first served.
func TestTurns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt := newTurnTaker(2)
		tt.take("a", 1, 5*time.Second)
		tt.take("b", 2, 5*time.Second)
		tt.expect(t, "the burst", "a", "b")
		tt.take("c", 3, 5*time.Second)
		tt.take("d", 4, 5*time.Second)
		tt.expect(t, "with the burst taken")
		tt.settle(true, 1) // a's right password
		tt.expect(t, "a right password's turn", "c")
		tt.settle(false, 2) // b's wrong one
		tt.expect(t, "a wrong password's turn")
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		tt.expect(t, "before a turn accrued")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		tt.expect(t, "a second on", "d")
	})
}

// TestTurnsGiveUp: a login gives up when its wait budget passes or its context
// ends, and leaves the line, so the next turn goes to the one behind it; with
// over_allowance_interval 0 none is given.
func TestTurnsGiveUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt := newTurnTaker(1)
		tt.take("a", 1, time.Second)
		tt.take("b", 2, 500*time.Millisecond)
		tt.take("c", 3, 5*time.Second)
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		tt.expect(t, "past b's budget", "a", "b gave up")
		tt.settle(false, 1)
		time.Sleep(time.Second)
		synctest.Wait()
		tt.expect(t, "the next turn", "c")

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan bool)
		go func() { done <- tt.th.takeTurn(ctx, natAddr, 4, time.Minute) }()
		synctest.Wait()
		cancel()
		if <-done {
			t.Error("a login whose context ended got a turn")
		}
		tt.th.setSettings(turnSettings())
		set := turnSettings()
		set.OverAllowanceInterval = 0
		tt.th.setSettings(set)
		if tt.th.takeTurn(context.Background(), natAddr, 5, time.Minute) {
			t.Error("a turn with over_allowance_interval 0")
		}
	})
}

// TestTurnsSprayedWaitLast: once a password has failed twice on turns, logins
// with it wait behind every other (those already waiting are moved back), and
// take a turn only from a full bucket, leaving the rest to the others.
func TestTurnsSprayedWaitLast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const spray = 77
		tt := newTurnTaker(3)
		tt.take("s1", spray, time.Minute)
		tt.take("s2", spray, time.Minute)
		tt.take("s3", spray, time.Minute)
		tt.take("s4", spray, time.Minute) // waits, not yet known as sprayed
		tt.expect(t, "the burst", "s1", "s2", "s3")
		tt.settle(false, spray)
		tt.settle(false, spray) // sprayed now: s4 moves back
		tt.take("alice", 10, time.Minute)
		time.Sleep(time.Second)
		synctest.Wait()
		tt.expect(t, "the first turn to accrue", "alice")
		tt.settle(true, 10)
		tt.take("bob", 11, time.Minute)
		tt.expect(t, "alice's turn given back", "bob")
		tt.settle(true, 11)
		time.Sleep(time.Second) // two turns: not a full bucket
		synctest.Wait()
		tt.expect(t, "two turns free")
		time.Sleep(time.Second) // three: the sprayer may take one
		synctest.Wait()
		tt.expect(t, "a full bucket", "s4")
		tt.take("carol", 12, time.Minute)
		tt.expect(t, "the two left", "carol")
	})
}

// TestTurnsPruned: an address's turns are forgotten once they are all free,
// nobody waits and its last wrong password is older than the window.
func TestTurnsPruned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt := newTurnTaker(1)
		tt.take("a", 1, time.Second)
		tt.settle(false, 1)
		tt.th.mu.Lock()
		defer tt.th.mu.Unlock()
		tt.th.pruneTurns(time.Now())
		if tt.th.turns[natAddr] == nil {
			t.Fatal("an address's turns forgotten while spent")
		}
		time.Sleep(tt.th.set.Window)
		tt.th.pruneTurns(time.Now())
		if len(tt.th.turns) != 0 {
			t.Error("full, idle turns kept past the window")
		}
	})
}

// TestLoginWaitingForATurn: a login over the address's allowance that waits for
// a turn is answered throttled when the wait budget passes, abandoned when its
// client leaves first, and neither is a failure.
func TestLoginWaitingForATurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newNATScene(t, turnSettings(), 3)
		s.a.gate.SetWaitBudget(500 * time.Millisecond)
		for i := range 3 { // the burst, spent
			s.a.Login(context.Background(), client, fmt.Sprint("fresh", i), fmt.Sprint("wrong", i))
		}
		start := time.Now()
		if out := s.a.Login(context.Background(), client, "student00", "right"); out.Result != ResultThrottled || time.Since(start) != 500*time.Millisecond {
			t.Errorf("past the wait budget: %+v after %v; want throttled after 500ms", out, time.Since(start))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if out := s.a.Login(ctx, client, "student01", "right"); out.Result != ResultAbandoned || out.Err == nil {
			t.Errorf("client gone while waiting: %+v; want abandoned", out)
		}
		for _, u := range []string{"student00", "student01"} {
			if s.a.gate.throttle.blocked(pairOf("192.0.2.10", u)) || s.a.gate.throttle.pairs[pairOf("192.0.2.10", u)] != nil {
				t.Errorf("%s: waiting for a turn left a tally", u)
			}
		}
		time.Sleep(time.Second)
		if out := s.a.Login(context.Background(), client, "student02", "right"); out.Result != ResultOK {
			t.Errorf("with a turn accrued: %+v", out)
		}
	})
}
