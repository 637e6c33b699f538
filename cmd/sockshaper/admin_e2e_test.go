package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
)

// openFDs counts the descriptors a process holds.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// scrapeP50 scrapes /metrics n times, each on a new connection (the worst case
// for a scraper: its kept-alive connection was closed), and returns the median
// latency and the number of failed scrapes.
func scrapeP50(t *testing.T, admin string, n int) (time.Duration, int) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var lat []time.Duration
	failed := 0
	for range n {
		start := time.Now()
		resp, err := client.Get("http://" + admin + "/metrics")
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err != nil {
			failed++
			continue
		}
		lat = append(lat, time.Since(start))
		time.Sleep(10 * time.Millisecond)
	}
	if len(lat) == 0 {
		return 0, failed
	}
	slices.Sort(lat)
	t.Logf("scrape latencies: min %v p50 %v p90 %v max %v", lat[0], lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1])
	return lat[len(lat)/2], failed
}

// waitAcceptQueueEmpty waits until the listening socket at addr has no
// connection waiting to be accepted: /proc/net/tcp shows a listener's accept
// queue as its rx_queue.
func waitAcceptQueueEmpty(t *testing.T, addr string) {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	a := ap.Addr().As4()
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], ap.Port())
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		queued := -1
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && f[1] == local && f[3] == "0A" {
				q, _ := strconv.ParseUint(strings.SplitN(f[4], ":", 2)[1], 16, 32)
				queued = int(q)
			}
		}
		if queued == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin listener %s still has %d connections queued", addr, queued)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitIdle waits until a process uses less than a tenth of a core over a
// quarter of a second.
func waitIdle(t *testing.T, pid int) {
	t.Helper()
	ticks := func() int {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// utime and stime, in clock ticks (1/100 s), after the parenthesised name.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		u, _ := strconv.Atoi(f[11])
		s, _ := strconv.Atoi(f[12])
		return u + s
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		before := ticks()
		time.Sleep(250 * time.Millisecond)
		if used := ticks() - before; used <= 2 {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("process %d still busy (%d ticks in 250 ms)", pid, used)
		}
	}
}

// idleKeepAlive makes one request, reads the answer and then holds the
// connection open without a word, as a leaked client pool does.
func idleKeepAlive(admin string) (net.Conn, error) {
	c, err := net.Dial("tcp", admin)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// nonReader asks for /metrics a few times on one connection with a small
// receive buffer and never reads, so the server's writes block. (A client that
// pipelines thousands of requests costs CPU however connections are capped: that
// takes a rate limit, not this test.)
func nonReader(admin string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", admin)
	if err != nil {
		return nil, err
	}
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	c.Write([]byte(strings.Repeat("GET /metrics HTTP/1.1\r\nHost: admin\r\n\r\n", 8)))
	return c, nil
}

// TestAdminUnderHostileClients holds 1,000 idle keep-alive connections and 200
// clients that never read against the daemon's admin endpoint. The daemon must
// hold a bounded number of descriptors, and a scraper's median latency must stay
// in the milliseconds.
func TestAdminUnderHostileClients(t *testing.T) {
	d := startDaemon(t, `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
access: {client_networks: [127.0.0.0/8]}
`, "")
	pid := d.cmd.Process.Pid
	baseP50, failed := scrapeP50(t, d.admin, 40)
	if failed > 0 {
		t.Fatalf("%d scrapes failed before the attack", failed)
	}
	baseFDs := openFDs(t, pid)

	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	var wg sync.WaitGroup
	attack := func(n int, open func(string) (net.Conn, error)) {
		for range n {
			wg.Go(func() {
				if c, err := open(d.admin); err == nil {
					mu.Lock()
					held = append(held, c)
					mu.Unlock()
				}
			})
		}
	}
	attack(1000, idleKeepAlive)
	attack(200, nonReader)
	wg.Wait()

	// The attack is in place, as the connections are held, once the daemon has
	// taken every connection off the kernel's accept queue and answered what the
	// hostile clients asked for.
	waitAcceptQueueEmpty(t, d.admin)
	waitIdle(t, pid)
	p50, failed := scrapeP50(t, d.admin, 40)
	fds := openFDs(t, pid)
	t.Logf("scrape p50 %v before, %v with %d hostile connections; daemon fds %d before, %d during; %d scrapes failed",
		baseP50, p50, len(held), baseFDs, fds, failed)
	if limit := baseFDs + metrics.AdminMaxConns + 16; fds > limit {
		t.Errorf("daemon holds %d descriptors under attack, want at most %d (the admin cap %d plus the %d before)",
			fds, limit, metrics.AdminMaxConns, baseFDs)
	}
	// Single-digit milliseconds on an idle machine; the bound leaves room for a
	// loaded 2-core machine running the race-built binary.
	if p50 > max(25*time.Millisecond, 5*baseP50) || failed > 2 {
		t.Errorf("scrape p50 %v under attack (%v before), %d of 40 failed", p50, baseP50, failed)
	}
}
