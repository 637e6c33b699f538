package main

import (
	"io"
	"math"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// shapedConfig limits every user of group "students" to RATE bytes/s download.
// Tolerances in these tests are wide on purpose (a shared 2-core machine running
// the race detector); the bench scripts report exact figures.
func shapedConfig(rate string) string {
	return baseConfig + `
shaping:
  default_group: students
  groups:
    students: {upload: 0, download: ` + rate + `}
`
}

// sourceServer streams bytes to every connection until the client goes away.
func sourceServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		buf := make([]byte, 32<<10)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// downloadFor reads from n sessions of user for d and returns each session's bytes.
func downloadFor(t *testing.T, proxyAddr, user, target string, n int, d time.Duration) []int64 {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialThrough(t, proxyAddr, user, target)
	}
	got := make([]int64, n)
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetReadDeadline(end)
			got[i], _ = io.Copy(io.Discard, c)
		}()
	}
	wg.Wait()
	return got
}

func sum(v []int64) (s int64) {
	for _, x := range v {
		s += x
	}
	return s
}

// coefficientOfVariation is the spread of per-session totals relative to their mean.
func coefficientOfVariation(v []int64) float64 {
	mean := float64(sum(v)) / float64(len(v))
	var sq float64
	for _, x := range v {
		sq += (float64(x) - mean) * (float64(x) - mean)
	}
	return math.Sqrt(sq/float64(len(v))) / mean
}

func TestShapedDownloadRateAndFairness(t *testing.T) {
	const limit = 2 << 20 // 2 MiB/s
	d := startDaemon(t, shapedConfig("2MiB"), users("alice", "bob"))
	src := sourceServer(t)
	const window = 3 * time.Second
	per := downloadFor(t, d.listen, "alice", src, 4, window)
	rate := float64(sum(per)) / window.Seconds()
	// The burst (64 KiB floor) lets a little more through at the start.
	if rate < 0.75*limit || rate > 1.25*limit {
		t.Errorf("4 sessions of one user achieved %.2f MiB/s, want about 2 MiB/s (±25%%)", rate/(1<<20))
	}
	if cv := coefficientOfVariation(per); cv > 0.25 {
		t.Errorf("sessions of one user differ too much: per-session bytes %v, CV %.2f", per, cv)
	}
	if v := d.metric(`sockshaper_throttled_seconds_total{app="other",direction="download"}`); v <= 0 {
		t.Errorf("throttled seconds = %v, want > 0 after saturating the bucket", v)
	}
	t.Logf("4 sessions: %.2f MiB/s, per-session %v", rate/(1<<20), per)
}

func TestSecondUserKeepsItsOwnRate(t *testing.T) {
	const limit = 1 << 20
	d := startDaemon(t, shapedConfig("1MiB"), users("alice", "bob"))
	src := sourceServer(t)
	var alice []int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); alice = downloadFor(t, d.listen, "alice", src, 8, 3*time.Second) }()
	bob := downloadFor(t, d.listen, "bob", src, 1, 3*time.Second)
	wg.Wait()
	if r := float64(sum(bob)) / 3; r < 0.75*limit {
		t.Errorf("bob got %.2f MiB/s while alice saturated her own bucket; want his 1 MiB/s (≥75%%)", r/(1<<20))
	}
	if r := float64(sum(alice)) / 3; r > 1.25*limit {
		t.Errorf("alice's 8 sessions got %.2f MiB/s, over her 1 MiB/s limit", r/(1<<20))
	}
}

func TestSIGHUPChangesLiveRate(t *testing.T) {
	d := startDaemon(t, shapedConfig("1MiB"), usersFile())
	src := sourceServer(t)
	c := dialThrough(t, d.listen, "alice", src)
	defer c.Close()
	measure := func(d time.Duration) float64 {
		c.SetReadDeadline(time.Now().Add(d))
		n, _ := io.Copy(io.Discard, c)
		return float64(n) / d.Seconds()
	}
	before := measure(2 * time.Second)
	writeFile(t, filepath.Join(d.dir, "sockshaper.yaml"), shapedConfig("4MiB"))
	d.signal(syscall.SIGHUP)
	d.waitMetric(`sockshaper_config_reloads_total{result="success"}`, 1)
	measure(300 * time.Millisecond) // the change lands within this
	after := measure(2 * time.Second)
	if before > 1.3*(1<<20) || after < 2.5*(1<<20) {
		t.Errorf("same session: %.2f MiB/s before, %.2f MiB/s after raising 1→4 MiB/s; want ≈1 then ≈4", before/(1<<20), after/(1<<20))
	}
	if v := d.metric(`sockshaper_users_active`); v != 1 {
		t.Errorf("users_active = %v, want 1", v)
	}
}
