package proxy

import (
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	xproxy "golang.org/x/net/proxy"

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
func BenchmarkRelayDownload(b *testing.B) { benchmarkDownload(b) }

// BenchmarkRelayDownloadShaped reads a stream through the proxy over loopback
// on the shaped path: a global bucket with a rate (so every chunk takes tokens
// and is spliced by the pacer) high enough never to make it wait. Allocations
// are the whole process's per MiB read, and must be 0: no chunk allocates.
func BenchmarkRelayDownloadShaped(b *testing.B) {
	fast := configs.Shaping{Global: configs.Limit{Upload: 1 << 40, Download: 1 << 40}}
	benchmarkDownload(b, withShaper(shaping.NewRegistry(fast)))
}

func benchmarkDownload(b *testing.B, opts ...harnessOption) {
	h := newHarness(b, "", append([]harnessOption{withMetrics()}, opts...)...)
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

// BenchmarkSessionChurn is one whole session as sockbench's churn runs it:
// connect, greeting, RFC 1929 login (cached after the first), CONNECT by
// address, 64 bytes and their echo, close; with the daemon's Prometheus metrics
// and its JSON accounting line. The proxy's part of the allocations per session
// is what the garbage collector pays for at a campus's connection rates; the
// benchmark's own client and echo target allocate too.
func BenchmarkSessionChurn(b *testing.B) {
	accounting := func(o *Options) { o.Accounting = slog.New(slog.NewJSONHandler(io.Discard, nil)) }
	h := newHarness(b, "", withMetrics(), accounting)
	echoAddr := startTarget(b, echo)
	d, err := xproxy.SOCKS5("tcp", h.addr, &xproxy.Auth{User: "alice", Password: testPassword}, xproxy.Direct)
	if err != nil {
		b.Fatal(err)
	}
	msg, reply := make([]byte, 64), make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		c, err := d.Dial("tcp", echoAddr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, reply); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
