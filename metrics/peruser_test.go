package metrics

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPerUserCapDropsAndCounts(t *testing.T) {
	m, _ := newTestMetrics(t, Options{PerUser: true, PerUserMaxUsers: 2})
	m.Transferred("alice", "web", DirectionUpload, TransportTCP, 100)
	m.Transferred("bob", "web", DirectionUpload, TransportTCP, 200)
	m.Transferred("carol", "web", DirectionUpload, TransportTCP, 300) // third user: dropped
	m.Transferred("dave", "skype", DirectionDownload, TransportUDP, 400)
	m.Transferred("alice", "web", DirectionUpload, TransportUDP, 1) // known user keeps counting

	if got := m.perUser.exported(); got != 2 {
		t.Errorf("exported users = %d, want 2", got)
	}
	if n := testutil.CollectAndCount(m.perUser.bytes); n != 2 {
		t.Errorf("per-user series = %d, want 2", n)
	}
	wants := map[string]float64{"alice": 101, "bob": 200}
	for user, want := range wants {
		if got := testutil.ToFloat64(m.perUser.bytes.WithLabelValues(user, "web", DirectionUpload)); got != want {
			t.Errorf("%s bytes = %v, want %v", user, got, want)
		}
	}
	if got := testutil.ToFloat64(m.perUser.dropped.WithLabelValues("web", DirectionUpload)); got != 300 {
		t.Errorf("dropped web upload = %v, want 300", got)
	}
	if got := testutil.ToFloat64(m.perUser.dropped.WithLabelValues("skype", DirectionDownload)); got != 400 {
		t.Errorf("dropped skype download = %v, want 400", got)
	}
	// The aggregate counts everyone, dropped or not.
	if got := testutil.ToFloat64(m.transferred.WithLabelValues("web", DirectionUpload, TransportTCP)); got != 600 {
		t.Errorf("transferred web upload tcp = %v, want 600", got)
	}
}

func TestPerUserAnonymous(t *testing.T) {
	m, _ := newTestMetrics(t, Options{PerUser: true})
	m.Transferred("", "web", DirectionDownload, TransportTCP, 42)
	if got := testutil.ToFloat64(m.perUser.bytes.WithLabelValues(AnonymousUser, "web", DirectionDownload)); got != 42 {
		t.Errorf("anonymous bytes = %v, want 42", got)
	}
}

func TestPerUserDefaultCap(t *testing.T) {
	m, _ := newTestMetrics(t, Options{PerUser: true})
	for i := range DefaultPerUserMaxUsers + 5 {
		m.Transferred(fmt.Sprintf("u%d", i), "web", DirectionUpload, TransportTCP, 1)
	}
	if got := m.perUser.exported(); got != DefaultPerUserMaxUsers {
		t.Errorf("exported users = %d, want %d", got, DefaultPerUserMaxUsers)
	}
	if got := testutil.ToFloat64(m.perUser.dropped.WithLabelValues("web", DirectionUpload)); got != 5 {
		t.Errorf("dropped = %v, want 5", got)
	}
}

func TestSetPerUser(t *testing.T) {
	m, _ := newTestMetrics(t, Options{})
	m.Transferred("alice", "web", DirectionUpload, TransportTCP, 1)
	if n := testutil.CollectAndCount(m.perUser.bytes); n != 0 {
		t.Fatalf("series while off = %d, want 0", n)
	}

	m.SetPerUser(true, 3)
	for _, u := range []string{"alice", "bob", "carol"} {
		m.Transferred(u, "web", DirectionUpload, TransportTCP, 1)
	}
	if n := testutil.CollectAndCount(m.perUser.bytes); n != 3 {
		t.Fatalf("series after on = %d, want 3", n)
	}

	m.SetPerUser(true, 5) // raising the cap keeps the series
	if n := testutil.CollectAndCount(m.perUser.bytes); n != 3 {
		t.Errorf("series after raising the cap = %d, want 3", n)
	}

	m.SetPerUser(true, 1) // lowering it below the users exported starts over
	if n := testutil.CollectAndCount(m.perUser.bytes); n != 0 {
		t.Errorf("series after lowering the cap = %d, want 0", n)
	}
	m.Transferred("bob", "web", DirectionUpload, TransportTCP, 1)
	m.Transferred("alice", "web", DirectionUpload, TransportTCP, 1)
	if n := testutil.CollectAndCount(m.perUser.bytes); n != 1 {
		t.Errorf("series after lowering the cap and traffic = %d, want 1", n)
	}

	m.SetPerUser(false, 1)
	m.Transferred("bob", "web", DirectionUpload, TransportTCP, 1)
	if n := testutil.CollectAndCount(m.perUser.bytes); n != 0 {
		t.Errorf("series after off = %d, want 0", n)
	}
}

// TestPerUserConcurrent runs adds and reloads together; run with -race.
func TestPerUserConcurrent(t *testing.T) {
	m, _ := newTestMetrics(t, Options{PerUser: true, PerUserMaxUsers: 10})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				m.Transferred(fmt.Sprintf("u%d", (g*500+i)%40), "web", DirectionUpload, TransportTCP, 1)
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			m.SetPerUser(i%5 != 0, 5+i%10)
		}
	})
	wg.Wait()
	m.SetPerUser(true, 10)
	if got := m.perUser.exported(); got > 10 {
		t.Errorf("exported users = %d, more than the cap 10", got)
	}
	if got := testutil.ToFloat64(m.transferred.WithLabelValues("web", DirectionUpload, TransportTCP)); got != 8*500 {
		t.Errorf("aggregate bytes = %v, want %d", got, 8*500)
	}
}
