package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWaterFill(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name   string
		ds     []float64
		global float64
		want   []float64
	}{
		{"no global cap: every demand gets its cap", []float64{10, 5}, 0, []float64{10, 5}},
		{"cap above the demands", []float64{10, 5}, 100, []float64{10, 5}},
		// Shared per user whatever their sessions: level 4.5 for the two users
		// who want more, 1 for the one who wants less; 4.5+4.5+1 = 10.
		{"shared per user, capped by demand", []float64{50, inf, 1}, 10, []float64{4.5, 4.5, 1}},
		{"paced demand below the level keeps what it offers", []float64{1, 100}, 11, []float64{1, 10}},
		{"uncapped and no global cap", []float64{inf, 3}, 0, []float64{inf, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := waterFill(tt.ds, tt.global)
			for i := range tt.want {
				if got[i] != tt.want[i] && math.Abs(got[i]-tt.want[i]) > 1e-6 {
					t.Errorf("waterFill = %v, want %v", got, tt.want)
					break
				}
			}
		})
	}
}

func testCampusOptions() *campusOptions {
	return &campusOptions{perAddr: 5, hogs: 1, hogSess: 10, heavy: 2, heavySess: 10, dlFrac: 0.1, dlSess: 2, callFrac: 0.1, bulkFrac: 0.05}
}

func TestNewMix(t *testing.T) {
	names := make([]string, 100)
	for i := range names {
		names[i] = fmt.Sprintf("u%d", i)
	}
	m, err := newMix(names, testCampusOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.hog) != 1 || len(m.heavy) != 2 || len(m.download) != 10 || len(m.call) != 10 || len(m.bulk) != 5 {
		t.Errorf("roles: %d hogs, %d heavy, %d download, %d call, %d bulk; want 1, 2, 10, 10, 5",
			len(m.hog), len(m.heavy), len(m.download), len(m.call), len(m.bulk))
	}
	perAddr := map[netip.Addr]int{}
	for i, a := range m.addr {
		perAddr[a]++
		if a.As4()[1] != userNet || !a.IsLoopback() {
			t.Errorf("user %d on %v, want 127.%d.x.y", i, a, userNet)
		}
	}
	if len(perAddr) != 20 {
		t.Errorf("%d addresses, want 20 (5 users each)", len(perAddr))
	}
	for a, n := range perAddr {
		if n != 5 {
			t.Errorf("%v has %d users, want 5", a, n)
		}
	}
	if m.addr[m.heavy[0]] == m.addr[m.heavy[1]] {
		t.Error("the heavy users share an address; roles should spread over the addresses")
	}
	if _, err := newMix(names[:4], testCampusOptions()); err == nil {
		t.Error("4 users for a hog, 2 heavy users and a downloader, a caller and a bulk user: want an error")
	}
}

func TestCampusSetupLoads(t *testing.T) {
	dir := t.TempDir()
	c := testCampusOptions()
	c.setup, c.userCount, c.cost, c.password = dir, 40, 4, "pw"
	if _, err := campusSetup(c); err != nil {
		t.Fatal(err)
	}
	lim, names, err := loadCampusConfig(filepath.Join(dir, "sockshaper.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 40 || names[0] != "u00000" {
		t.Errorf("users: %d, first %q; want 40 from u00000", len(names), names[0])
	}
	if lim.Student != 500_000 || lim.Skype != 125_000 || lim.Global <= 0 {
		t.Errorf("limits %+v: want students 4 Mbit/s, skype 1 Mbit/s, a global cap", lim)
	}
	m, _ := newMix(names, c)
	hog := names[m.hog[0]]
	if lim.own(hog) != 0 || lim.own(names[m.heavy[0]]) != 500_000 || lim.keepAlive != time.Minute {
		t.Errorf("own limits: hog %v, heavy %v; http.keepalive %v; want unlimited, 4 Mbit/s, 1m",
			lim.own(hog), lim.own(names[m.heavy[0]]), lim.keepAlive)
	}
	ds := m.demands(func(u int) float64 { return lim.own(names[u]) }, lim.Skype)
	if offered := offeredBy(ds); lim.Global >= offered || !math.IsInf(ds[0], 1) {
		t.Errorf("global cap %v is not below the offered %v, or the hog's demand %v is capped", lim.Global, offered, ds[0])
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "sockshaper.yaml"))
	noSkype := strings.Replace(string(cfg), fmt.Sprintf("127.%d.0.0/16", callNet), "192.0.2.0/24", 1)
	bad := filepath.Join(dir, "no-skype.yaml")
	if err := os.WriteFile(bad, []byte(noSkype), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadCampusConfig(bad); err == nil || !strings.Contains(err.Error(), "skype") {
		t.Errorf("config without the skype network: err %v, want one naming the skype class", err)
	}
}

// TestWindowStarvation drives the window computation with flows in each state.
func TestWindowStarvation(t *testing.T) {
	m := &campusMix{users: []string{"a", "b", "c"}, download: []int{0, 1, 2}, dlSess: 1}
	cs := &campus{o: &options{}, mix: m, flows: newFlows(m), events: newCampusEvents(),
		limits: campusLimits{Student: 500_000}}
	t0 := time.Now()
	cs.start = t0
	for _, f := range cs.flows {
		f.opened.Store(t0.Add(-time.Second).UnixNano())
	}
	prev := windowEdge{snap: cs.snapshot(), procs: procSample{at: t0}}
	prev.snap.at = t0
	cs.flows[0].bytes.Add(1_250_000)                            // moved: 1 Mbit/s over 10 s
	cs.flows[2].ended.Store(t0.Add(5 * time.Second).UnixNano()) // failed in the window
	late := &flow{kind: flowDownload, user: 1}                  // opened during the window
	cs.flows = append(cs.flows, late)
	prev.snap.flows = append(prev.snap.flows, flowSnap{})
	late.opened.Store(t0.Add(time.Second).UnixNano())
	cur := windowEdge{snap: cs.snapshot(), procs: procSample{at: t0.Add(10 * time.Second)}}
	cur.snap.at = t0.Add(10 * time.Second)
	starved := make([]bool, len(cs.flows))
	w := cs.window(1, prev, cur, starved)
	if w.StarvedTotal != 1 || w.Starved["download"] != 1 || !starved[1] || starved[0] || starved[2] || starved[3] {
		t.Errorf("starved %v (total %d, flags %v); want flow 1 alone", w.Starved, w.StarvedTotal, starved)
	}
	if w.Tracked["download"] != 2 || w.Ended != 1 {
		t.Errorf("tracked %v, ended %d; want 2 tracked (the failed and the late flow left out), 1 ended", w.Tracked, w.Ended)
	}
	if w.Students.Users != 2 || math.Abs(w.Students.Max-1) > 1e-9 || w.Students.Min != 0 || math.Abs(w.GlobalMbps-1) > 1e-9 {
		t.Errorf("students %+v, global %v; want 2 users at 1 and 0 Mbit/s, 1 Mbit/s in all", w.Students, w.GlobalMbps)
	}
}

func TestErrCause(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&stepError{"io", os.ErrDeadlineExceeded}, "timeout"},
		{&stepError{"auth", fmt.Errorf("%w (status 1)", errRejected)}, "rejected"},
		{&stepError{"connect", replyError(2)}, "reply 0x02"},
		{&stepError{"dial", syscall.ECONNREFUSED}, "refused"},
		{&stepError{"io", syscall.ECONNRESET}, "reset"},
		{&stepError{"dial", syscall.EADDRNOTAVAIL}, "no free port"},
		{io.ErrUnexpectedEOF, "closed"},
		{errors.New("odd"), "other"},
	}
	for _, tt := range tests {
		if got := errCause(tt.err); got != tt.want {
			t.Errorf("errCause(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestParseCounterByLabel(t *testing.T) {
	page := `# HELP sockshaper_auth_attempts_total Logins.
# TYPE sockshaper_auth_attempts_total counter
sockshaper_auth_attempts_total{result="failed"} 12
sockshaper_auth_attempts_total{result="ok"} 3.5e+03
sockshaper_auth_attempts_total{result="throttled"} 7
sockshaper_auth_attempts_totalx{result="ok"} 99
sockshaper_sessions_total{app="other",command="connect",result="ok"} 5
`
	got, err := parseCounterByLabel(strings.NewReader(page), authMetric, "result")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["failed"] != 12 || got["ok"] != 3500 || got["throttled"] != 7 {
		t.Errorf("got %v", got)
	}
}

func TestCampusOptions(t *testing.T) {
	o, err := parseOptions("campus", []string{"-config", "x.yaml", "-password", "p", "-quick", "-guessers", "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.campus
	if o.duration != 15*time.Second || c.window != 5*time.Second || c.userCount != 300 || c.guessers != 3 {
		t.Errorf("-quick: duration %v, window %v, users %d, guessers %d; want 15s, 5s, 300, 3 (given)", o.duration, c.window, c.userCount, c.guessers)
	}
	for _, bad := range [][]string{
		{"-password", "p"},
		{"-config", "x", "-password", "p", "-callers", "1.5"},
		{"-config", "x", "-password", "p", "-window", "1m", "-duration", "30s"},
		{"-config", "x"},
	} {
		if _, err := parseOptions("campus", bad, io.Discard); err == nil {
			t.Errorf("parseOptions(campus %v) succeeded, want an error", bad)
		}
	}
}
