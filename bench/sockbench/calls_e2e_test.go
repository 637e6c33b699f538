package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
)

// callsE2EConfig shapes every user to 64 kbit/s down. The burst is set small so
// that a 2 s warm-up drains it: the default (64 KiB) is 8 s of 64 kbit/s.
const callsE2EConfig = `listen: 127.0.0.1:0
admin_listen: ""
auth: {users_file: %s}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
limits: {max_sessions: 20000, max_sessions_per_client_ip: 20000, max_sessions_per_user: 20000}
shaping:
  default_group: g
  groups: {g: {upload: 0, download: 64kbit, burst: 8KiB}}
  global: {upload: 0, download: 0}
`

// TestCallsAgainstSockshaper runs 50 users, one unpaced download each, through
// the built daemon's 64 kbit/s limit, and checks that most of them get that rate.
// The band is wide (±25%) for a loaded 2-core machine and for the shaper's
// chunks (0.5 s of traffic each at this rate, so a 4 s phase holds 8 ± 1), but
// a limit not applied, or one missed by a quarter, fails it.
func TestCallsAgainstSockshaper(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	bin := buildSockshaper(t, dir)
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("caller%02d", i)
	}
	users, err := hashUsers(names, "pw", 4)
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(dir, "users.htpasswd")
	writeFile(t, usersFile, string(users))
	config := filepath.Join(dir, "config.yaml")
	writeFile(t, config, fmt.Sprintf(callsE2EConfig, usersFile))
	addr, _, pid := startCampusDaemon(t, bin, config)

	var dl transferResult
	runJSON(t, &dl, "download", "-proxy", addr, "-users-file", usersFile, "-password", "pw", "-conns", "50",
		"-warmup", "2s", "-duration", "4s", "-read-every", "50ms", "-expect-rate", "64kbit", "-tolerance", "25%",
		"-pid", strconv.Itoa(pid))
	c := dl.Check
	if c == nil || dl.Errors != 0 || dl.LiveConns != 50 {
		t.Fatalf("%d live of 50, %d errors %v, check %+v", dl.LiveConns, dl.Errors, dl.ErrorSteps, c)
	}
	t.Logf("%d of 50 within ±25%% of 64 kbit/s; min %.1f, median %.1f, max %.1f kbit/s; proxy %.1f%% of a core",
		c.Within, c.MinKbps, c.MedianKbps, c.MaxKbps, deref(dl.ProxyCPUPct))
	if c.Within < 40 {
		t.Errorf("%d of 50 sessions within ±25%% of 64 kbit/s (%d below, %d above; min %.1f, median %.1f, max %.1f kbit/s); want at least 40",
			c.Within, c.Below, c.Above, c.MinKbps, c.MedianKbps, c.MaxKbps)
	}
	if len(dl.Users) != 50 || dl.Users[0].User != "caller00" || dl.Users[0].Conns != 1 {
		t.Errorf("users %+v...; want 50 users with one connection each", dl.Users[:min(2, len(dl.Users))])
	}
	if dl.ProxyCPUPct == nil || dl.ProxyCPUPer1000 == nil || dl.ProxyRSSMiB == nil || *dl.ProxyRSSMiB <= 0 {
		t.Errorf("proxy CPU %v, per 1,000 %v, RSS %v; want all three", dl.ProxyCPUPct, dl.ProxyCPUPer1000, dl.ProxyRSSMiB)
	}
}

// deref returns *p, or 0 for nil.
func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
