package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/proctest"
)

// startCampusDaemon starts bin on config and returns its SOCKS5 and admin
// addresses and its pid. Cleanup stops it.
func startCampusDaemon(t *testing.T, bin, config string) (listen, admin string, pid int) {
	t.Helper()
	cmd := exec.Command(bin, "-config", config, "-log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	proctest.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(t, cmd) })
	type serving struct{ Msg, Listen, Admin string }
	found := make(chan serving, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec serving
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving" {
				found <- rec
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case rec := <-found:
		return rec.Listen, rec.Admin, cmd.Process.Pid
	case <-time.After(15 * time.Second):
		t.Fatal("sockshaper logged no serving line within 15 s")
		return "", "", 0
	}
}

// TestCampusAgainstSockshaper runs the campus scenario at small scale against
// the built daemon and checks that the report is complete and its numbers are
// consistent with each other. It does not judge the proxy: starved sessions or
// limits missed are what the benchmark reports, not test failures.
func TestCampusAgainstSockshaper(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	bin := buildSockshaper(t, dir)
	mix := []string{"-password", "pw", "-hogs", "1", "-hog-sessions", "8", "-heavy", "1", "-heavy-sessions", "8",
		"-downloaders", "0.1", "-callers", "0.1", "-skype-bulk", "0.05", "-slowloris", "10", "-guessers", "4", "-guess-addrs", "2",
		"-keepalive-per-addr", "3", "-keepalive-addrs", "2", "-keepalive-every", "300ms"}
	var setup setupResult
	runJSON(t, &setup, append([]string{"campus", "-setup", dir, "-user-count", "60", "-cost", "4"}, mix...)...)
	listen, admin, pid := startCampusDaemon(t, bin, setup.Config)
	var r campusResult
	runJSON(t, &r, append([]string{"campus", "-config", setup.Config, "-proxy", listen, "-pid", strconv.Itoa(pid),
		"-metrics", "http://" + admin + "/metrics", "-browse-every", "500ms", "-duration", "4s", "-window", "2s",
		"-warmup", "1s", "-timeout", "3s"}, mix...)...)

	if r.Users != 60 || r.Addresses != 12 || r.Flows != 1*8+1*8+6*2+6*2+3 || r.Opened < 1 || r.Opened > r.Flows {
		t.Errorf("users %d on %d addresses, %d of %d flows opened; want 60 on 12, 1 to 43 of 43", r.Users, r.Addresses, r.Opened, r.Flows)
	}
	if r.Limits.GlobalShare <= 0 || r.Limits.GlobalShare >= r.Limits.Global {
		t.Errorf("the global cap's fair share per user is %v of %v Mbit/s", r.Limits.GlobalShare, r.Limits.Global)
	}
	if r.Limits.Student != 4 || r.Limits.Skype != 1 || r.Limits.Global <= 0 || r.Limits.Global >= r.OfferedMbps {
		t.Errorf("limits %+v, offered %v: want 4, 1 and a global cap below the offered load", r.Limits, r.OfferedMbps)
	}
	if len(r.Windows) != 2 {
		t.Fatalf("%d windows, want 2", len(r.Windows))
	}
	for _, w := range r.Windows {
		checkCampusWindow(t, &r, w)
	}
	s := r.Summary
	if s.Windows != 2 || s.StarvedMax > s.StarvedSum || s.StarvedFlows > r.Flows || s.Logins.Count == 0 {
		t.Errorf("summary %+v: inconsistent with its windows", s)
	}
	// PAC requests are answered 200, proxied ones without credentials 407.
	if ka := s.KeepAlive; ka.Answers["200"] == 0 || ka.Answers["407"] == 0 || ka.PerSecond <= 0 {
		t.Errorf("keep-alive figures %+v: want answers 200 and 407", ka)
	}
	var table bytes.Buffer
	r.table(&table)
	for _, want := range []string{"campus via " + listen, "starved:", "guesses:", "keep-alive: answers", "hogs mean", "sockbench itself"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table output lacks %q:\n%s", want, table.String())
		}
	}
}

// checkCampusWindow checks one window for completeness and consistency.
func checkCampusWindow(t *testing.T, r *campusResult, w campusWindow) {
	t.Helper()
	tracked, starved := 0, 0
	for k, n := range w.Tracked {
		tracked += n
		if w.Starved[k] > n {
			t.Errorf("window %d: %d %s flows starved of %d tracked", w.Index, w.Starved[k], k, n)
		}
	}
	for _, n := range w.Starved {
		starved += n
	}
	if starved != w.StarvedTotal || tracked > r.Flows || w.Seconds < 1.5 || w.Seconds > 3 {
		t.Errorf("window %d: starved %d (total %d), %d tracked, %.2f s", w.Index, starved, w.StarvedTotal, tracked, w.Seconds)
	}
	perUser := 0.0
	for _, s := range []rateSpread{w.Students, w.Heavy, w.Hogs, w.SkypeBulk} {
		if s.Min < 0 || s.Min > s.Mean+1e-9 || s.Mean > s.Max+1e-9 || s.CV < 0 || s.Setting <= 0 {
			t.Errorf("window %d: rates %+v out of order", w.Index, s)
		}
		perUser += s.Mean * float64(s.Users)
	}
	// The global figure counts every flow and the short sessions, so it holds at
	// least what the users on each limit got.
	if w.GlobalMbps+1e-6 < perUser {
		t.Errorf("window %d: global %.3f Mbit/s below the sum of the per-user rates %.3f", w.Index, w.GlobalMbps, perUser)
	}
	if c := w.Calls; c.Callers != 6 || c.AchievedMin < 0 || c.AchievedMean > 1.5 || c.UDPLoss < 0 || c.UDPLoss > 1 {
		t.Errorf("window %d: calls %+v", w.Index, c)
	}
	if w.Browse.Sessions+len(w.Errors) == 0 || w.Logins.Count > 0 && (w.Logins.P50 <= 0 || w.Logins.P99 < w.Logins.P50) {
		t.Errorf("window %d: browse %+v, logins %+v, errors %v", w.Index, w.Browse, w.Logins, w.Errors)
	}
	if w.Guesses.Attempts == 0 || w.ToolCPU <= 0 || w.Proxy == nil || w.Proxy.RSSMiB <= 0 || w.Proxy.FDs <= 0 || w.Proxy.CPUPercent < 0 {
		t.Errorf("window %d: guesses %+v, tool CPU %.1f%%, proxy %+v", w.Index, w.Guesses, w.ToolCPU, w.Proxy)
	}
	if w.AuthAttempts == nil {
		t.Errorf("window %d: no auth attempts from the metrics page", w.Index)
	}
	if w.Slowloris.Open < 0 || w.Slowloris.Open > 10 {
		t.Errorf("window %d: %d slowloris connections open, want 0 to 10", w.Index, w.Slowloris.Open)
	}
	if ka := w.KeepAlive; ka.Open < 0 || ka.Open > 6 || ka.PerSecond < 0 {
		t.Errorf("window %d: keep-alive %+v, want 0 to 6 open", w.Index, ka)
	}
}
