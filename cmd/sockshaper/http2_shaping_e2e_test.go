package main

import (
	"crypto/tls"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// readStreams reads every tunnel's download in the background and counts its
// bytes; stop ends them.
type streamCounters struct {
	bytes []atomic.Int64
	wg    sync.WaitGroup
}

func countStreams(resps []*http.Response) *streamCounters {
	c := &streamCounters{bytes: make([]atomic.Int64, len(resps))}
	for i, resp := range resps {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			buf := make([]byte, 16<<10)
			for {
				n, err := resp.Body.Read(buf)
				c.bytes[i].Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
	}
	return c
}

func (c *streamCounters) snapshot() []int64 {
	out := make([]int64, len(c.bytes))
	for i := range c.bytes {
		out[i] = c.bytes[i].Load()
	}
	return out
}

// TestHTTP2StreamsOfAShapedUserShareFairly: 200 CONNECT streams of one user on
// one HTTP/2 connection share the user's bucket: each gets its fair share
// within ±10% (median over the run; the extremes are logged), and the sum is
// the user's limit.
func TestHTTP2StreamsOfAShapedUserShareFairly(t *testing.T) {
	const rate = 1_000_000 // bytes/s: 5 kB/s per stream
	d, addr, ca, _ := httpsDaemon(t, "tls: {listen: 127.0.0.1:0, cert_file: proxy.pem, key_file: proxy.key, max_concurrent_streams: 250}\n"+
		"shaping:\n  default_group: students\n  groups:\n    students: {upload: 0, download: 1MB}\n")
	source := sourceServer(t)
	p := dialH2(t, addr, &tls.Config{RootCAs: ca.Pool, ServerName: "proxy.test"}, "alice")
	n := 200
	if v, err := strconv.Atoi(os.Getenv("H2_STREAMS")); err == nil {
		n = v
	}
	resps := make([]*http.Response, n)
	for i := range resps {
		resp, up, err := p.tunnel(source)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("tunnel %d: %v, %v", i, resp, err)
		}
		defer up.Close()
		defer resp.Body.Close()
		resps[i] = resp
	}
	counters := countStreams(resps)
	time.Sleep(3 * time.Second) // the bucket's burst and the streams' start spent
	before := counters.snapshot()
	const window = 8 * time.Second
	time.Sleep(window)
	after := counters.snapshot()
	rates := make([]float64, n)
	var total float64
	for i := range rates {
		rates[i] = float64(after[i]-before[i]) / window.Seconds()
		total += rates[i]
	}
	sort.Float64s(rates)
	fair := total / float64(n)
	t.Logf("%d streams: total %.0f B/s (limit %d), per stream min %.0f p10 %.0f median %.0f p90 %.0f max %.0f (fair %.0f)",
		n, total, rate, rates[0], rates[n/10], rates[n/2], rates[n*9/10], rates[n-1], fair)
	if math.Abs(total-rate)/rate > 0.2 {
		t.Errorf("the streams together moved %.0f B/s, want the user's %d ±20%%", total, rate)
	}
	// ±10% of the fair share for 80% of the streams, and no stream below half:
	// a stream the scheduler starves shows at the bottom.
	if rates[n/10] < 0.9*fair || rates[n*9/10] > 1.1*fair {
		t.Errorf("p10..p90 of per-stream rates %.0f..%.0f B/s, want within ±10%% of the fair %.0f", rates[n/10], rates[n*9/10], fair)
	}
	if rates[0] < 0.5*fair {
		t.Errorf("the slowest stream got %.0f B/s, below half its fair share %.0f", rates[0], fair)
	}
	_ = d
}

// TestHTTP2StuckStreamDoesNotStallTheOthers: on one connection, a stream whose
// client never reads its download and one whose destination never reads its
// upload leave the other streams' transfers at full speed: flow control holds
// back only the stuck streams.
func TestHTTP2StuckStreamDoesNotStallTheOthers(t *testing.T) {
	d, addr, ca, _ := httpsDaemon(t, "")
	source, sink := sourceServer(t), silentServer(t)
	p := dialH2(t, addr, &tls.Config{RootCAs: ca.Pool, ServerName: "proxy.test"}, "alice")
	const size = 32 << 20
	download := func(n int) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for range n {
			resp, up, err := p.tunnel(source)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("tunnel: %v, %v", resp, err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer up.Close()
				defer resp.Body.Close()
				if _, err := io.CopyN(io.Discard, resp.Body, size); err != nil {
					t.Errorf("download: %v", err)
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	alone := download(4)
	// Stuck: nobody reads this one's download...
	stuckDown, upDown, err := p.tunnel(source)
	if err != nil {
		t.Fatal(err)
	}
	defer upDown.Close()
	defer stuckDown.Body.Close()
	// ...and this one's destination reads nothing, while its client keeps
	// sending until flow control stops it.
	stuckUp, upUp, err := p.tunnel(sink)
	if err != nil {
		t.Fatal(err)
	}
	defer stuckUp.Body.Close()
	go io.Copy(upUp, zeroReader{})
	time.Sleep(2 * time.Second) // both windows full
	beside := download(4)
	t.Logf("4 × 32 MiB: %v alone, %v beside two stuck streams", alone, beside)
	if beside > 3*alone+2*time.Second {
		t.Errorf("downloads beside stuck streams took %v, against %v alone", beside, alone)
	}
	_ = d
}

// zeroReader reads zeros without end.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// silentServer accepts connections and never reads from them, until the test
// ends.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}
