package tunnel

import (
	"context"
	"net"
	"sync"
	"testing"
)

// grantingSlots grants up to free slots in all, and counts what it is asked.
type grantingSlots struct {
	mu                 sync.Mutex
	free               int
	reserves, releases int
}

func (g *grantingSlots) Reserve(_ context.Context, _ string, _ int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reserves++
	if g.free == 0 {
		return false
	}
	g.free--
	return true
}

func (g *grantingSlots) Release(string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.releases++
	g.free++
}

// admitSession opens a connection to core and a session of alice on it, and
// admits her (max_sessions_per_user, quota).
func admitSession(t *testing.T, core *Core) (*Session, Outcome) {
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
	conn := core.NewConn(proxySide, AddrPortOf(proxySide.RemoteAddr()), ConnHooks{})
	t.Cleanup(conn.Abort)
	s := conn.NewSession("test")
	s.user = "alice"
	return s, s.admitUser()
}

// TestAdmitUserReservesClusterSlots: a session the local count admits then
// reserves its slot across the instances; a refusal there refuses the session
// and gives back the local count; the session's end gives back both. A
// session the local cap refuses asks the cluster nothing.
func TestAdmitUserReservesClusterSlots(t *testing.T) {
	pol := testPolicy(t)
	pol.Config.Limits.MaxSessionsPerUser = 3
	slots := &grantingSlots{free: 2}
	core := New(pol, Options{UserSlots: slots})
	a, o := admitSession(t, core)
	b, o2 := admitSession(t, core)
	if !o.OK() || !o2.OK() {
		t.Fatalf("the first two sessions: %v, %v; want both admitted", o, o2)
	}
	if _, o := admitSession(t, core); o.Refusal != LimitReached {
		t.Fatalf("the third session (no cluster slot left): %+v, want LimitReached", o)
	}
	if n := core.UserSessions()["alice"]; n != 2 {
		t.Errorf("alice holds %d sessions here after a refused reservation, want 2", n)
	}
	a.End()
	if _, o := admitSession(t, core); !o.OK() {
		t.Errorf("a session after one ended: %+v, want admitted", o)
	}
	slots.free = 10
	if _, o := admitSession(t, core); !o.OK() {
		t.Errorf("a third session with slots free: %+v, want admitted", o)
	}
	if _, o := admitSession(t, core); o.Refusal != LimitReached {
		t.Errorf("a fourth session: %+v, want refused by the local cap of 3", o)
	}
	b.End()
	if slots.reserves != 5 || slots.releases != 2 {
		t.Errorf("asked the cluster for %d slots and gave back %d, want 5 and 2 (the local cap asks nothing)",
			slots.reserves, slots.releases)
	}
}
