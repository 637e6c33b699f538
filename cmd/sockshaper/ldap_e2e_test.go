package main

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/slapdtest"
)

// ldapDaemonConfig is a config whose logins go to s over StartTLS with the test
// CA; auth and shaping are the caller's extra YAML under the ldap block. The
// service account's password is written to a file beside it.
func ldapDaemonConfig(t *testing.T, s *slapdtest.Server, authExtra, ldapExtra, rest string) string {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "ldap.secret")
	writeFile(t, secret, slapdtest.ServicePassword+"\n")
	return fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
access:
  client_networks: [127.0.0.0/8]
  deny_destinations: [private, link-local, metadata]
timeouts: {handshake: 5s, dial: 2s, idle: 30s, drain: 2s}
auth:
%s  ldap:
    url: %q
    start_tls: true
    ca_file: %q
    bind_dn: %q
    bind_password_file: %q
    base_dn: %q
    user_filter: "(uid={user})"
    groups:
      %q: staff
      %q: students
%s%s`, authExtra, s.URL, s.CAFile, slapdtest.ServiceDN, secret, slapdtest.PeopleDN,
		slapdtest.StaffGroup, slapdtest.StudentsGroup, ldapExtra, rest)
}

// groupShaping gives staff 2 MiB/s and students 512 KiB/s of download.
const groupShaping = `
shaping:
  default_group: students
  groups:
    staff: {upload: 0, download: 2MiB}
    students: {upload: 0, download: 512KiB}
`

// TestLDAPGroupsChooseRates logs directory users in through the built binary: a
// staff user gets the staff rate, a student the students' rate (±25%), measured at
// the same time; passwords and the service account's secret appear nowhere.
func TestLDAPGroupsChooseRates(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	d := startDaemon(t, ldapDaemonConfig(t, s, "", "", groupShaping), "")
	src := sourceServer(t)
	const window = 3 * time.Second
	want := map[string]float64{"alice": 2 << 20, "bob": 512 << 10}
	got := map[string]float64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for user := range want {
		conns := make([]net.Conn, 2)
		for i := range conns {
			c, err := ldapDial(t, d.listen, user, src)
			if err != nil {
				t.Fatalf("%s via the directory: %v", user, err)
			}
			conns[i] = c
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int64
			end := time.Now().Add(window)
			var inner sync.WaitGroup
			var m sync.Mutex
			for _, c := range conns {
				inner.Add(1)
				go func() {
					defer inner.Done()
					defer c.Close()
					c.SetReadDeadline(end)
					k, _ := io.Copy(io.Discard, c)
					m.Lock()
					n += k
					m.Unlock()
				}()
			}
			inner.Wait()
			mu.Lock()
			got[user] = float64(n) / window.Seconds()
			mu.Unlock()
		}()
	}
	wg.Wait()
	for user, rate := range got {
		t.Logf("%s: %.0f KiB/s (limit %.0f KiB/s)", user, rate/1024, want[user]/1024)
		if rate < 0.75*want[user] || rate > 1.25*want[user] {
			t.Errorf("%s: %.0f KiB/s; want %.0f KiB/s ±25%% from the directory group", user, rate/1024, want[user]/1024)
		}
	}
	d.waitMetric(`sockshaper_auth_attempts_total{result="ok"}`, 4)
	if v := d.metric(`sockshaper_ldap_connections`); v < 1 || v > 16 {
		t.Errorf("ldap_connections = %v; want 1 to 16", v)
	}
	checkNoSecrets(t, d, slapdtest.ServicePassword, slapdtest.Password("alice"), slapdtest.Password("bob"))
}

// TestLDAPWithUsersFile: the users file's users log in against the file (even
// with the directory stopped), everyone else against the directory.
func TestLDAPWithUsersFile(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	d := startDaemon(t, ldapDaemonConfig(t, s, "  users_file: users.htpasswd\n", "", groupShaping), users("svc", "alice"))
	echo := echoServer(t)
	for _, tc := range []struct {
		user, pass string
		want       byte
	}{
		{"svc", password, 0},
		{"alice", password, 0},                    // the file's alice
		{"alice", slapdtest.Password("alice"), 1}, // not the directory's
		{"bob", slapdtest.Password("bob"), 0},     // a directory user
		{"bob", password, 1},
	} {
		if got := socksLogin(t, d.listen, tc.user, tc.pass); got != tc.want {
			t.Errorf("login %s: status %d, want %d", tc.user, got, tc.want)
		}
	}
	s.Stop()
	c := dialThrough(t, d.listen, "svc", echo) // the file needs no directory
	roundTrip(t, c, "still here")
	c.Close()
	d.waitMetric(`sockshaper_auth_attempts_total{result="failed"}`, 2)
}

// TestLDAPOutage stops the directory under the running binary: logins are
// answered with status 1 and counted unavailable, never failed or throttled; a
// user verified shortly before keeps working within the stale window and not after
// it; one log line says the directory is unreachable, one that it is back.
func TestLDAPOutage(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	cfg := ldapDaemonConfig(t, s,
		"  cache_ttl: 1s\n  throttle: {failures_per_user: 1, failures_per_address: 2, window: 1m}\n",
		"    stale_window: 3s\n", groupShaping)
	d := startDaemon(t, cfg, "")
	echo := echoServer(t)
	if got := socksLogin(t, d.listen, "alice", slapdtest.Password("alice")); got != 0 {
		t.Fatalf("alice before the outage: status %d", got)
	}
	verified := time.Now() // the cache entry is from before this
	s.Stop()
	for i := range 6 { // three times the address's allowance
		if got := socksLogin(t, d.listen, "bob", slapdtest.Password("bob")); got != 1 {
			t.Fatalf("bob's login %d in the outage: status %d, want 1", i, got)
		}
	}
	d.waitMetric(`sockshaper_auth_attempts_total{result="unavailable"}`, 6)
	time.Sleep(time.Until(verified.Add(1500 * time.Millisecond))) // past cache_ttl
	c, err := ldapDial(t, d.listen, "alice", echo)
	if err != nil {
		t.Fatalf("alice within the stale window: %v", err)
	}
	roundTrip(t, c, "stale but welcome")
	c.Close()
	time.Sleep(time.Until(verified.Add(4500 * time.Millisecond))) // past cache_ttl + stale_window
	if got := socksLogin(t, d.listen, "alice", slapdtest.Password("alice")); got != 1 {
		t.Errorf("alice after the stale window: status %d, want 1", got)
	}
	d.waitMetric(`sockshaper_auth_attempts_total{result="unavailable"}`, 7) // the stale login counts as ok
	for _, series := range []string{`sockshaper_auth_attempts_total{result="failed"}`, `sockshaper_auth_attempts_total{result="throttled"}`} {
		if v := d.metric(series); v != 0 {
			t.Errorf("%s = %v in an outage; want 0", series, v)
		}
	}
	if v := d.metric(`sockshaper_ldap_errors_total{kind="unreachable"}`); v < 7 {
		t.Errorf("ldap_errors_total{kind=unreachable} = %v; want one per login that asked", v)
	}
	if n := waitRecords(d, "directory unreachable", 1); n != 1 {
		t.Errorf("%d 'directory unreachable' lines for 7 failed logins within a minute; want 1", n)
	}
	s.Restart()
	if got := socksLogin(t, d.listen, "bob", slapdtest.Password("bob")); got != 0 {
		t.Errorf("bob after the directory came back: status %d", got)
	}
	if n := waitRecords(d, "directory reachable again", 1); n != 1 {
		t.Errorf("%d 'directory reachable again' lines; want 1", n)
	}
}

// TestLDAPReload changes the LDAP block under the running binary: the new mapping
// applies to the next login, the old connections are closed, and a block whose
// secret cannot be read is refused with the old one kept.
func TestLDAPReload(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	cfg := ldapDaemonConfig(t, s, "  cache_ttl: 0s\n", "", groupShaping)
	d := startDaemon(t, cfg, "")
	src := sourceServer(t)
	rate := func(user string) float64 {
		c, err := ldapDial(t, d.listen, user, src)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
		n, _ := io.Copy(io.Discard, c)
		return float64(n) / 1.5
	}
	// Tolerances that tell the groups apart however loaded the machine: staff
	// is four times the students' rate.
	if r := rate("alice"); r < 1.25*(512<<10) {
		t.Fatalf("alice before the reload: %.0f KiB/s; want the staff 2 MiB/s", r/1024)
	}
	// ldaps:// now, and staff no longer mapped: alice is a student.
	changed := strings.Replace(cfg, "url: \""+s.URL+"\"\n    start_tls: true", "url: \""+s.LDAPSURL+"\"", 1)
	changed = strings.Replace(changed, fmt.Sprintf("%q: staff\n", slapdtest.StaffGroup), "", 1)
	if changed == cfg {
		t.Fatal("config not changed")
	}
	writeFile(t, filepath.Join(d.dir, "sockshaper.yaml"), changed)
	d.signal(syscall.SIGHUP)
	d.waitMetric(`sockshaper_config_reloads_total{result="success"}`, 1)
	if r := rate("alice"); r > 1.25*(512<<10) {
		t.Errorf("alice after the reload: %.0f KiB/s; want the students' 512 KiB/s", r/1024)
	}
	// The old directory's idle connection closed: one open, the new one.
	if v := d.metric(`sockshaper_ldap_connections`); v != 1 {
		t.Errorf("ldap_connections after the reload = %v; want 1 (the old pool closed)", v)
	}
	secret := filepath.Join(t.TempDir(), "gone.secret")
	writeFile(t, filepath.Join(d.dir, "sockshaper.yaml"),
		strings.Replace(changed, "bind_password_file: ", "bind_password_file: \""+secret+"\"\n    #", 1))
	d.signal(syscall.SIGHUP)
	d.waitMetric(`sockshaper_config_reloads_total{result="error"}`, 1)
	if got := socksLogin(t, d.listen, "bob", slapdtest.Password("bob")); got != 0 {
		t.Errorf("bob after a refused reload: status %d; want the old directory still in use", got)
	}
	if waitRecords(d, "reload failed; keeping the running config", 1) != 1 ||
		!strings.Contains(d.records("reload failed; keeping the running config")[0]["err"].(string), "auth.ldap.bind_password_file: open "+secret) {
		t.Errorf("the refused reload's log does not name auth.ldap.bind_password_file and the file:\n%s", d.logText())
	}
	checkNoSecrets(t, d, slapdtest.ServicePassword)
}

// TestLDAPThroughHTTPFront: directory logins work the same through the HTTP
// front: a right password is let through (forwarded and CONNECT), a wrong one
// gets 407, and while the directory is down the answer is 503 (retry later), not
// 407 (which would make a browser ask for a password that is right).
func TestLDAPThroughHTTPFront(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	d := startDaemon(t, ldapDaemonConfig(t, s, "  cache_ttl: 0s\n", "", groupShaping), "")
	web := startWebServer(t, false)
	good := httpProxyURL(d.listen, "alice", slapdtest.Password("alice"))
	for _, args := range [][]string{{"-x", good}, {"-p", "-x", good}} {
		if out, code := curlArgs(t, append(args, web.URL+"/hello/")...); code != 0 || out != "hello from /hello/" {
			t.Errorf("curl %v as alice from the directory: exit %d, %q", args[:len(args)-1], code, out)
		}
	}
	status := func(proxyURL string) string {
		out, _ := curlArgs(t, "-o", "/dev/null", "-w", "%{http_code}", "-x", proxyURL, web.URL+"/hello/")
		return out
	}
	if got := status(httpProxyURL(d.listen, "alice", "wrong")); got != "407" {
		t.Errorf("wrong directory password: status %s, want 407", got)
	}
	s.Stop()
	if got := status(good); got != "503" {
		t.Errorf("directory down: status %s, want 503", got)
	}
	var found bool
	for _, rec := range d.records("session") {
		if rec["front"] == "http" && rec["user"] == "alice" && rec["result"] == "ok" {
			found = true
		}
	}
	if !found {
		t.Error("no accounting line of alice's directory login through the HTTP front")
	}
}
