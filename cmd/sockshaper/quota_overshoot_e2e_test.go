package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// overshootAllowance is the daily allowance of the overshoot tests: large enough
// that an unshaped download runs at full loopback speed for a while, small
// enough that it is used up in well under a second.
const overshootAllowance = 200_000_000

// shippingBinary builds sockshaper without the race detector, once, for the
// tests that need the relay at the speed it ships with: the race-built binary
// moves a tenth of it.
var shippingBinary = sync.OnceValues(func() (string, error) {
	path := filepath.Join(filepath.Dir(binary), "sockshaper-shipping")
	build := exec.Command("go", "build", "-o", path, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return path, build.Run()
})

// startShippingDaemon is startDaemon on the shipping build: a wrapper drops the
// race-built binary's path from the command line and execs the other one, so
// the process is still the daemon.
func startShippingDaemon(t *testing.T, config, users string) *process {
	t.Helper()
	path, err := shippingBinary()
	if err != nil {
		t.Fatalf("build sockshaper without -race: %v", err)
	}
	return startDaemonWrapped(t, []string{"/bin/sh", "-c", `shift; exec "$0" "$@"`, path}, config, users)
}

// downloadAll runs n unshaped downloads of user at once through the proxy, each
// until the proxy ends it, and returns the bytes each received and how long
// they took from the last login on.
func downloadAll(t *testing.T, proxyAddr, user, src string, n int) ([]int64, time.Duration) {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialThrough(t, proxyAddr, user, src)
		defer conns[i].Close()
	}
	got := make([]int64, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			got[i], _ = io.Copy(io.Discard, c)
		})
	}
	wg.Wait()
	return got, time.Since(start)
}

// TestRefusingQuotaOvershoot downloads unshaped at full loopback speed (GB/s)
// with 1, 8 and 32 sessions of one user over a refusing daily quota of 200 MB: what
// the daemon relays and counts stays within 2% over the allowance, and the user
// gets all of it. Bytes used to reach the store only at the relay's flush points
// and a crossing cut the sessions through an event, so a session moved tens of
// MB more before its cut landed (11–28% over).
func TestRefusingQuotaOvershoot(t *testing.T) {
	for _, sessions := range []int{1, 8, 32} {
		t.Run(fmt.Sprintf("%d sessions", sessions), func(t *testing.T) {
			d := startShippingDaemon(t, quotaConfigE2E(fmt.Sprintf("{daily: %d, over_rate: 0}", overshootAllowance), "0"), usersFile())
			start := time.Now()
			got, elapsed := downloadAll(t, d.listen, "alice", sourceServer(t), sessions)
			var received int64
			for _, n := range got {
				received += n
			}
			for len(d.records("session")) < sessions {
				if time.Since(start) > 30*time.Second {
					t.Fatalf("%d accounting lines, want %d", len(d.records("session")), sessions)
				}
				time.Sleep(20 * time.Millisecond)
			}
			counted := findUser(usersView(t, d, true), "alice").Today.Total
			over := float64(counted-overshootAllowance) / overshootAllowance
			t.Logf("%d sessions: received %d, counted %d (%+.2f%% of the allowance) in %v (%.1f GB/s)",
				sessions, received, counted, 100*over, elapsed.Round(time.Millisecond), float64(counted)/elapsed.Seconds()/1e9)
			if counted < overshootAllowance || over >= 0.02 {
				t.Errorf("counted %d bytes for a refusing allowance of %d (%+.2f%%), want at least the allowance and less than 2%% over",
					counted, overshootAllowance, 100*over)
			}
			if received > counted {
				t.Errorf("the client received %d bytes, the daemon counted %d", received, counted)
			}
		})
	}
}
