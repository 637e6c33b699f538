package proxy

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sockshaper/sockshaper/metrics"
)

// startUDPEchoAtPort starts an echo server on port of some 127.0.0.0/8 address
// that no other test (of this or a parallel run) holds, so a test can use a
// well-known port such as 3478.
func startUDPEchoAtPort(t *testing.T, port uint16) *udpEcho {
	t.Helper()
	for range 20 {
		ip := netip.AddrFrom4([4]byte{127, 34, byte(rand.IntN(256)), byte(1 + rand.IntN(254))})
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)))
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return serveUDPEcho(t, c)
	}
	t.Fatalf("no free 127.34.x.y address at port %d", port)
	return nil
}

// series returns the value of a gauge or counter series on reg; labels are
// name=value pairs. Missing is 0.
func series(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want []string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for _, kv := range want {
		k, v, _ := strings.Cut(kv, "=")
		if got[k] != v {
			return false
		}
	}
	return len(got) == len(want)
}

// TestUDPAssociationIsAnAppSession runs an association whose client talks to a
// peer on UDP 3478, which the default classifier counts as skype: the
// association shows as an active skype session as soon as it sends there, and
// closes as one in sessions_total and the accounting line.
func TestUDPAssociationIsAnAppSession(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Options{Apps: []string{"skype", "other"}})
	h := newHarness(t, "", func(o *Options) { o.Recorder = m })
	relay := startUDPEchoAtPort(t, 3478)
	active := func(app string) float64 {
		return series(t, reg, "sockshaper_sessions_active", "front=socks5", "command=udp_associate", "app="+app)
	}
	c := associateUDP(t, h.addr, false)
	// The session opens just after its reply is written.
	waitFor(t, "association open", func() bool { return active("other") == 1 })
	if s := active("skype"); s != 0 {
		t.Fatalf("before any datagram: active skype %v, want 0", s)
	}
	c.expectEcho(relay, relay.addr.Addr().String(), "media")
	if o, s := active("other"), active("skype"); o != 0 || s != 1 {
		t.Fatalf("after a datagram to UDP 3478: active other %v skype %v, want 0 and 1", o, s)
	}
	c.ctl.Close()
	waitFor(t, "session closed", func() bool {
		return series(t, reg, "sockshaper_sessions_total", "front=socks5", "command=udp_associate", "app=skype", "result=ok") == 1
	})
	if o, s := active("other"), active("skype"); o != 0 || s != 0 {
		t.Errorf("after close: active other %v skype %v, want 0 and 0", o, s)
	}
	if n := series(t, reg, "sockshaper_sessions_total", "front=socks5", "command=udp_associate", "app=other", "result=ok"); n != 0 {
		t.Errorf("the association also counted as other: %v", n)
	}
	waitFor(t, "accounting line", func() bool {
		return strings.Contains(h.logs.String(), "command=udp_associate destination=0.0.0.0:0 dialled="+relay.addr.String()+" app=skype")
	})
}

// TestUDPAssociationClassIsTheMostBytes: an association that sent a little to a
// skype peer first and far more elsewhere shows as skype while it runs and
// closes as the class that moved the most bytes.
func TestUDPAssociationClassIsTheMostBytes(t *testing.T) {
	h := newHarness(t, "")
	relay := startUDPEchoAtPort(t, 3478)
	other := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	c.expectEcho(relay, relay.addr.Addr().String(), "hi")
	waitFor(t, "reclassified", func() bool { return h.rec.get("reclassified udp_associate other skype") == 1 })
	c.expectEcho(other, "127.0.0.1", strings.Repeat("x", 1000))
	c.ctl.Close()
	waitFor(t, "session closed", func() bool { return h.rec.get("closed udp_associate other ok") == 1 })
	if n := h.rec.get("reclassified udp_associate skype other"); n != 1 {
		t.Errorf("moved back to other %d times, want 1", n)
	}
	if n := h.rec.get("closed udp_associate skype ok"); n != 0 {
		t.Errorf("closed as skype too: %d", n)
	}
}

// TestUDPAssociationWithoutClassStaysOther: no reclassification for traffic
// the classifier does not know.
func TestUDPAssociationWithoutClassStaysOther(t *testing.T) {
	h := newHarness(t, "")
	echo := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	c.expectEcho(echo, "127.0.0.1", "plain")
	c.ctl.Close()
	waitFor(t, "session closed", func() bool { return h.rec.get("closed udp_associate other ok") == 1 })
	if n := h.rec.get("reclassified udp_associate other skype"); n != 0 {
		t.Errorf("reclassified %d times", n)
	}
}
