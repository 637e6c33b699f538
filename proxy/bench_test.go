package proxy

import (
	"io"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/shaping"
)

// withMetrics records into the daemon's Prometheus metrics (per-user series on),
// so that a benchmark's allocations are those a deployment would see.
func withMetrics() harnessOption {
	return func(o *Options) { o.Recorder = metrics.New(prometheus.NewRegistry(), metrics.Options{PerUser: true}) }
}

// BenchmarkRelayRoundTrip is a 64-byte request and its echo through the proxy
// over loopback: the small-message path, one read and one write per direction.
// Allocations are the whole process's, proxy included, per round trip.
func BenchmarkRelayRoundTrip(b *testing.B) {
	h := newHarness(b, "", withMetrics())
	c := dialVia(b, h.addr, "alice", startTarget(b, echo))
	defer c.Close()
	msg, reply := make([]byte, 64), make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, reply); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRelayDownload reads a stream through the proxy over loopback: the
// spliced path. Allocations are the whole process's per MiB read.
func BenchmarkRelayDownload(b *testing.B) {
	h := newHarness(b, "", withMetrics())
	source := startTarget(b, func(c net.Conn) {
		buf := make([]byte, 1<<20)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	c := dialVia(b, h.addr, "alice", source)
	defer c.Close()
	buf := make([]byte, 1<<20)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRelayDownloadShaped reads a stream through the proxy over loopback
// on the shaped path: a global bucket with a rate (so every chunk takes tokens
// and is spliced by the pacer) high enough never to make it wait. Allocations
// are the whole process's per MiB read, and must be 0: no chunk allocates.
func BenchmarkRelayDownloadShaped(b *testing.B) {
	fast := configs.Shaping{Global: configs.Limit{Upload: 1 << 40, Download: 1 << 40}}
	h := newHarness(b, "", withMetrics(), withShaper(shaping.NewRegistry(fast)))
	source := startTarget(b, func(c net.Conn) {
		buf := make([]byte, 1<<20)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	c := dialVia(b, h.addr, "alice", source)
	defer c.Close()
	buf := make([]byte, 1<<20)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}
