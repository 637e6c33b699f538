package usage

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// grantConfig gives every user a daily allowance of daily bytes, refusing
// over it when overRate is 0 and shaping to overRate otherwise.
func grantConfig(daily configs.ByteSize, overRate configs.Rate) *configs.Config {
	cfg := configs.Defaults()
	cfg.Shaping = configs.Shaping{DefaultGroup: "all", Groups: map[string]configs.Limit{
		"all": {Quota: &configs.Quota{Daily: daily, OverRate: overRate}}}}
	return &cfg
}

// relayReport is the relay's report interval in bytes (proxy/tunnel reportEvery).
const relayReport = 256 << 10

// relayDirection moves bytes for one direction of a session as the relay does:
// steps of at most step bytes taken from the grant, reported to the store
// every relayReport bytes and whenever the grant is used up, the grant renewed
// after each report, until the grant is refused or moving ends (after until
// bytes, when until > 0). It returns what it moved.
//
// A direction that finds nothing free waits for the reports of the others; for
// the last ones to see the user over, every direction reports when it finds
// its grant used up, so none may wait forever on bytes another holds
// unreported: all of them move until refused.
func relayDirection(s *Store, user string, g *Grant, upload bool, step, until int64) int64 {
	var moved, unreported int64
	report := func() {
		if upload {
			s.Add(user, unreported, 0)
		} else {
			s.Add(user, 0, unreported)
		}
		unreported = 0
		g.Renew()
	}
	for until <= 0 || moved < until {
		if g.Left() == 0 {
			report()
			if g.Refused() {
				return moved
			}
			if g.Left() == 0 {
				// The user's other directions moved what is left: wait
				// for their reports, as the relay does.
				time.Sleep(time.Millisecond)
				continue
			}
		}
		want := step
		if until > 0 {
			want = min(want, until-moved)
		}
		n := g.Take(want)
		g.Settle(n)
		moved += n
		if unreported += n; unreported >= relayReport {
			report()
		}
	}
	report()
	return moved
}

// TestGrantsHoldAnAllowance runs sessions of one user, each moving as fast as
// it can in 1 MiB steps (a splice's most) under its grants, over a refusing
// allowance of 200 MB: together they move the whole allowance and less than
// 0.5% more, however many sessions share it (200: an attacker's), whether
// their upload directions move too or hold their grants idle, and whether they
// start together or each as soon as it is admitted (the early ones then hold
// grants sized for fewer sessions).
func TestGrantsHoldAnAllowance(t *testing.T) {
	const allowance = 200_000_000
	for _, tc := range []struct {
		sessions     int
		upload       bool // the upload directions move too
		startAtAdmit bool
	}{{1, false, false}, {8, false, false}, {8, true, false}, {8, true, true}, {200, true, false}, {200, false, true}} {
		t.Run(fmt.Sprintf("%d sessions upload %v start at admission %v", tc.sessions, tc.upload, tc.startAtAdmit), func(t *testing.T) {
			s := newStore(t, grantConfig(allowance, 0), newClock("2026-03-10T12:00:00Z"), nil)
			var total atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			if tc.startAtAdmit {
				close(start)
			}
			for range tc.sessions {
				sess, err := s.Admit("bob", "socks5", "connect")
				if err != nil {
					break // the first sessions used the allowance up already
				}
				t.Cleanup(sess.Close)
				for _, upload := range []bool{false, true} {
					g := sess.Grant()
					if upload && !tc.upload {
						continue // idle
					}
					wg.Go(func() {
						<-start
						total.Add(relayDirection(s, "bob", &g, upload, 1<<20, 0))
					})
				}
			}
			if !tc.startAtAdmit {
				close(start)
			}
			wg.Wait()
			moved := total.Load()
			over := float64(moved-allowance) / allowance
			t.Logf("moved %d (%+.3f%%)", moved, 100*over)
			// The bound is 2%; 1% here leaves room for the steps in
			// flight when the grant runs out (seen +0.524% once with 8 sessions).
			if moved < allowance || over >= 0.01 {
				t.Errorf("%d sessions moved %d bytes under a refusing allowance of %d (%+.3f%%), want at least all of it and under 1%% more",
					tc.sessions, moved, allowance, 100*over)
			}
		})
	}
}

// TestGrantEndsOverAllowance: a session that moved nothing yet cannot move
// anything once another session takes the user over the allowance; over a
// refusing quota its grant stays 0 when renewed, over a shaping one it is
// unlimited (the shaper holds the user to the over rate).
func TestGrantEndsOverAllowance(t *testing.T) {
	for _, overRate := range []configs.Rate{0, 1000} {
		s := newStore(t, grantConfig(1_000_000, overRate), newClock("2026-03-10T12:00:00Z"), nil)
		holder, _ := s.Admit("bob", "socks5", "connect")
		defer holder.Close()
		held := holder.Grant()
		other, _ := s.Admit("bob", "socks5", "connect")
		defer other.Close()
		if n := held.Left(); n != 1_000_000/4 {
			t.Fatalf("the grant of one of two sessions on a fresh allowance is %d, want a quarter", n)
		}
		g := other.Grant()
		relayDirection(s, "bob", &g, false, 64<<10, 2_000_000)
		if !s.isOver("bob") {
			t.Fatal("bob is not over after moving twice his allowance")
		}
		want := int64(0)
		if overRate > 0 {
			want = NoLimit
		}
		if n := held.Left(); n != want {
			t.Errorf("over_rate %v: the other session's grant is %d after bob went over, want %d", overRate, n, want)
		}
		if n := held.Renew(); n != want {
			t.Errorf("over_rate %v: renewed over the allowance: %d, want %d", overRate, n, want)
		}
	}
}

// isOver reports whether user is over an allowance.
func (s *Store) isOver(user string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.users[user]
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.over
}

// TestGrantFollowsReloadAndPeriod: an exempt user's grant is unlimited until a
// reload gives them an allowance, which limits it at once; a new day lifts a
// refusing allowance used up yesterday.
func TestGrantFollowsReloadAndPeriod(t *testing.T) {
	c := newClock("2026-03-10T12:00:00Z")
	exempt := grantConfig(1000, 0)
	exempt.Shaping.UserQuotas = map[string]configs.Quota{"bob": {}}
	s := newStore(t, exempt, c, nil)
	sess, _ := s.Admit("bob", "socks5", "connect")
	defer sess.Close()
	g := sess.Grant()
	g.Settle(g.Take(100))
	if g.Left() != NoLimit || g.Renew() != NoLimit {
		t.Fatalf("an exempt user's grant is %d", g.Left())
	}
	s.Update(grantConfig(100_000, 0))
	if n := g.Left(); n != 50_000 {
		t.Fatalf("after a reload set an allowance of 100000 the grant of bob's one session is %d, want half", n)
	}
	relayDirection(s, "bob", &g, false, 1000, 0)
	if n := g.Renew(); n != 0 || !s.Refuses("bob") {
		t.Fatalf("over the refusing allowance the grant is %d", n)
	}
	c.set("2026-03-11T00:00:01Z")
	if n := g.Renew(); n != 50_000 {
		t.Errorf("the next day's grant is %d, want half the allowance", n)
	}
}

// TestGrantShareFollowsSessions: the share of each direction is what is left
// divided among the live sessions' directions, as they come and go, and never
// less than the floor.
func TestGrantShareFollowsSessions(t *testing.T) {
	s := newStore(t, grantConfig(1_000_000, 0), newClock("2026-03-10T12:00:00Z"), nil)
	first, _ := s.Admit("bob", "socks5", "connect")
	defer first.Close()
	g := first.Grant()
	var more []*Session
	for range 3 {
		sess, _ := s.Admit("bob", "socks5", "connect")
		more = append(more, sess)
	}
	if n := g.Left(); n != 1_000_000/8 {
		t.Errorf("one of four sessions has %d, want an eighth of the allowance", n)
	}
	s.Add("bob", 0, 600_000)
	if n := g.Left(); n != 400_000/8 {
		t.Errorf("after 600000 used the share is %d, want an eighth of what is left", n)
	}
	for _, sess := range more {
		sess.Close()
		sess.Close()
	}
	if n := g.Left(); n != 400_000/2 {
		t.Errorf("alone again the share is %d, want half of what is left", n)
	}
	s.Add("bob", 0, 399_000)
	if n := g.Left(); n != 1000 {
		t.Errorf("1000 bytes left: the share is %d, want them (the floor never passes what is left)", n)
	}
	for range 200 {
		sess, _ := s.Admit("bob", "socks5", "connect")
		defer sess.Close()
	}
	s.Update(grantConfig(100_000_000_000, 0))
	if n := g.Left(); n != (100_000_000_000-1_000_000+1000)/402 {
		t.Errorf("with a larger allowance and 201 sessions the share is %d", n)
	}
	s.Update(grantConfig(2_000_000, 0))
	if n := g.Left(); n != minShare {
		t.Errorf("with 1001000 bytes of 2 MB left among 201 sessions the share is %d, want the floor %d", n, minShare)
	}
}

// TestGrantNil: without a store nothing limits.
func TestGrantNil(t *testing.T) {
	var sess *Session
	g := sess.Grant()
	g.Use(1 << 40)
	g.Settle(g.Take(1 << 40))
	if g.Left() != NoLimit || g.Renew() != NoLimit {
		t.Error("the grant of a nil Session limits")
	}
	var zero Grant
	if zero.Left() != NoLimit {
		t.Error("the zero Grant limits")
	}
}

// TestGrantAllocs: the relay's calls allocate nothing, reports and renewals
// included.
func TestGrantAllocs(t *testing.T) {
	s := newStore(t, grantConfig(1<<40, 0), newClock("2026-03-10T12:00:00Z"), nil)
	sess, _ := s.Admit("bob", "socks5", "connect")
	defer sess.Close()
	g := sess.Grant()
	if n := testing.AllocsPerRun(1000, func() {
		g.Settle(g.Take(g.Left() / 2))
		s.Add("bob", 0, 1000)
		g.Renew()
	}); n != 0 {
		t.Errorf("a step and a renewal allocate %v times", n)
	}
}
