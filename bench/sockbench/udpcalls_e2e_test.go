package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
)

// udpCallsConfig classes the far ends' network (127.66.0.0/16) as skype and
// limits skype per user to %[2]s each way, with a burst of two datagrams' worth
// so that a limit below the call's rate binds from the start.
const udpCallsConfig = `listen: 127.0.0.1:0
admin_listen: ""
auth: {users_file: %[1]s}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
limits: {max_sessions: 20000, max_sessions_per_client_ip: 20000, max_sessions_per_user: 20000}
shaping:
  default_group: ""
  groups: {}
  apps: {skype: {per_user: {upload: %[2]s, download: %[2]s, burst: 512B}}}
  global: {upload: 0, download: 0}
apps:
  skype:
    networks: [127.66.0.0/16]
`

// TestUDPCallsAgainstSockshaper carries 50 calls' media both ways, one user
// each, through the built daemon for 5 s, 200 B every 20 ms each way (80 kbit/s
// of payload): under a skype limit of 200 kbit/s per user every datagram must
// arrive, with a jitter bound wide enough for a loaded 2-core machine; under one
// of 40 kbit/s about half of each direction (30% to 70%) must be dropped, which shows that
// the calls are classed and shaped per user. The direct path runs too, for the
// same checks without a proxy.
func TestUDPCallsAgainstSockshaper(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	const calls = 50
	dir := t.TempDir()
	bin := buildSockshaper(t, dir)
	names := make([]string, calls)
	for i := range names {
		names[i] = fmt.Sprintf("caller%02d", i)
	}
	users, err := hashUsers(names, "pw", 4)
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(dir, "users.htpasswd")
	writeFile(t, usersFile, string(users))
	args := []string{"udp-calls", "-users-file", usersFile, "-password", "pw", "-conns", strconv.Itoa(calls), "-far", "127.66.0.1"}

	var direct callsResult
	runJSON(t, &direct, append(args, "-direct", "-warmup", "1s", "-duration", "5s")...)
	checkCalls(t, "direct", direct, calls, 0, 0)

	for _, tt := range []struct {
		limit            string
		minLoss, maxLoss float64 // percent
	}{{"200kbit", 0, 0}, {"40kbit", 30, 70}} {
		config := filepath.Join(dir, "config-"+tt.limit+".yaml")
		writeFile(t, config, fmt.Sprintf(udpCallsConfig, usersFile, tt.limit))
		addr, _, pid := startCampusDaemon(t, bin, config)
		var r callsResult
		runJSON(t, &r, append(args, "-proxy", addr, "-pid", strconv.Itoa(pid), "-warmup", "1s", "-duration", "5s")...)
		checkCalls(t, "skype limit "+tt.limit, r, calls, tt.minLoss, tt.maxLoss)
		if r.ProxyCPU == nil || r.RSSPerCallKiB == nil || r.ProxyFDs == nil || *r.ProxyFDs < 2*calls {
			t.Errorf("skype limit %s: proxy CPU %v, RSS per call %v, descriptors %v; want figures, 2 descriptors a call",
				tt.limit, r.ProxyCPU, r.RSSPerCallKiB, r.ProxyFDs)
		}
		t.Logf("skype limit %s: loss %.2f%%, jitter p99 %.2f ms (direct %.2f), against send times %.2f ms (direct %.2f); proxy %.1f%% of a core",
			tt.limit, r.LossPercent, r.Jitter.P99, direct.Jitter.P99, r.TransitJitter.P99, direct.TransitJitter.P99, deref(r.ProxyCPU))
	}
}

// checkCalls checks what every udp-calls run must show: every call live, no
// error or stray datagram, 250 datagrams a second per call scheduled over the
// measured phase, loss within [minLoss, maxLoss] percent, ordered percentiles,
// and jitter against the send times under a second: wide, since a 2-core machine
// shared with builds has shown p99s of 200 ms on the direct path, but a path
// that holds datagrams back for seconds fails it.
func checkCalls(t *testing.T, name string, r callsResult, calls int, minLoss, maxLoss float64) {
	t.Helper()
	want := int64(calls * 2 * 5 * 50) // both ways, 5 s, 50 a second
	j := r.TransitJitter
	switch {
	case r.Scenario != "udp-calls" || r.LiveCalls != calls || r.Errors != 0 || r.Bad != 0 || r.SendErrors != 0:
		t.Errorf("%s: scenario %q, %d live of %d, errors %d %v, %d bad, %d send errors", name, r.Scenario, r.LiveCalls, calls, r.Errors, r.ErrorSteps, r.Bad, r.SendErrors)
	case r.Sent < want*95/100 || r.Sent > want:
		t.Errorf("%s: %d datagrams sent in the measured phase, want %d", name, r.Sent, want)
	case r.LossPercent < minLoss || r.LossPercent > maxLoss || r.Received+r.Lost != r.Sent:
		t.Errorf("%s: %d of %d lost (%.2f%%; up %d, down %d), want %.0f%% to %.0f%%", name, r.Lost, r.Sent, r.LossPercent, r.UpLost, r.DownLost, minLoss, maxLoss)
	case maxLoss > 0 && (r.UpLost == 0 || r.DownLost == 0):
		t.Errorf("%s: lost %d toward the far ends and %d toward the clients; the limit is both ways", name, r.UpLost, r.DownLost)
	case j.Count == 0 || !(j.P50 <= j.P90 && j.P90 <= j.P99 && j.P99 <= j.Max) || j.P99 > 1000:
		t.Errorf("%s: jitter against send times %+v, want ordered with p99 under a second", name, j)
	}
}

func TestUDPCallsFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-size", "23"}, {"-size", "70000"}, {"-frame", "10us"}, {"-frame", "2s"},
		{"-conns", "20000"}, {"-far", "::1"}, {"-far", "nowhere"}, {"-drain", "1m"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"udp-calls", "-direct"}, args...), &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)\n%s", args, code, stderr.String())
		}
	}
}
