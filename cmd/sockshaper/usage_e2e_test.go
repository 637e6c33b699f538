package main

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/proctest"
	usagestore "github.com/sockshaper/sockshaper/usage"
)

// quotaConfigE2E keeps usage in the daemon's folder and gives students the
// quota and download rate given.
func quotaConfigE2E(quota, download string) string {
	return baseConfig + `
state_dir: state
metrics: {per_user: true}
shaping:
  default_group: students
  groups:
    students: {download: ` + download + `, quota: ` + quota + `}
`
}

// fixedServer sends n bytes to each connection, then closes it.
func fixedServer(t *testing.T, n int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		data := make([]byte, n)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.Write(data); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// fetchThrough reads all that target sends, through the proxy as user.
func fetchThrough(t *testing.T, proxyAddr, user, target string) int64 {
	t.Helper()
	c := dialThrough(t, proxyAddr, user, target)
	defer c.Close()
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		t.Fatalf("fetch %s as %s: %v", target, user, err)
	}
	return n
}

// usersView reads the admin listener's usage view.
func usersView(t *testing.T, d *process, all bool) usagestore.Report {
	t.Helper()
	url := "http://" + d.admin + usagestore.APIPath
	if all {
		url += "?all=1"
	}
	body, code := httpGetStatus(t, url)
	var r usagestore.Report
	if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil {
		t.Fatalf("GET %s: %d %v\n%s", url, code, err, body)
	}
	return r
}

func findUser(r usagestore.Report, name string) *usagestore.UserReport {
	for i := range r.Users {
		if r.Users[i].User == name {
			return &r.Users[i]
		}
	}
	return nil
}

// waitToday polls the usage view until user's bytes today reach want.
func waitToday(t *testing.T, d *process, user string, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		u := findUser(usersView(t, d, true), user)
		if u != nil && u.Today.Total >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's usage today: %+v, want %d bytes", user, u, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// savedToday reads user's bytes today from the state file; -1 when absent.
func savedToday(t *testing.T, dir, user string) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "state", usagestore.StateFile))
	if os.IsNotExist(err) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Users map[string]struct {
			DayUpload   int64 `json:"day_upload"`
			DayDownload int64 `json:"day_download"`
		} `json:"users"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state file is not whole JSON: %v\n%s", err, data)
	}
	u, ok := st.Users[user]
	if !ok {
		return -1
	}
	return u.DayUpload + u.DayDownload
}

// TestUsageSurvivesRestartAndSIGKILL counts a user's downloads, then stops the
// daemon with SIGTERM (the drain writes the usage) and with SIGKILL (only what
// was written within the flush interval survives), starting it again each time
// on the same state_dir.
func TestUsageSurvivesRestartAndSIGKILL(t *testing.T) {
	const chunk = 300_000
	cfg := quotaConfigE2E("{daily: 1GiB, over_rate: 1Mbit}", "0")
	d := startDaemon(t, cfg, usersFile())
	src := fixedServer(t, chunk)
	if n := fetchThrough(t, d.listen, "alice", src); n != chunk {
		t.Fatalf("fetched %d bytes, want %d", n, chunk)
	}
	waitToday(t, d, "alice", chunk)
	d.signal(syscall.SIGTERM)
	if code := d.waitExit(15 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	if got := savedToday(t, d.dir, "alice"); got != chunk {
		t.Fatalf("state file after SIGTERM holds %d bytes for alice, want %d", got, chunk)
	}

	d2 := startDaemonAt(t, d.dir, nil, cfg, usersFile())
	if u := findUser(usersView(t, d2, true), "alice"); u == nil || u.Today.Total != chunk || u.Quota.Daily.Used != chunk {
		t.Fatalf("after a restart alice's usage is %+v, want %d bytes today", u, chunk)
	}
	fetchThrough(t, d2.listen, "alice", src)
	counted := time.Now()
	waitToday(t, d2, "alice", 2*chunk)
	for savedToday(t, d.dir, "alice") != 2*chunk {
		if time.Since(counted) > usagestore.DefaultFlushEvery+3*time.Second {
			t.Fatalf("state file holds %d bytes %v after they were counted, want %d within the flush interval",
				savedToday(t, d.dir, "alice"), time.Since(counted), 2*chunk)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("written %v after counting", time.Since(counted).Round(time.Millisecond))
	fetchThrough(t, d2.listen, "alice", src) // counted, likely not yet written
	waitToday(t, d2, "alice", 3*chunk)
	d2.signal(syscall.SIGKILL)
	d2.waitExit(10 * time.Second)

	d3 := startDaemonAt(t, d.dir, nil, cfg, usersFile())
	u := findUser(usersView(t, d3, true), "alice")
	if u == nil || u.Today.Total < 2*chunk || u.Today.Total > 3*chunk {
		t.Errorf("after SIGKILL alice's usage is %+v, want 2 or 3 × %d bytes (at most the last flush interval lost)", u, chunk)
	}
	if recs := d3.records("usage state unreadable; moved aside, counting from zero"); len(recs) != 0 {
		t.Errorf("SIGKILL left a state file that could not be read: %v", recs)
	}
}

// TestCorruptStateFileMovedAside starts the daemon on a damaged state file: it
// reports it, keeps it under another name, and counts from zero.
func TestCorruptStateFileMovedAside(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "state"), 0o700)
	garbage := `{"version": 1, "users": {"alice": {"day": "2026-`
	writeFile(t, filepath.Join(dir, "state", usagestore.StateFile), garbage)
	d := startDaemonAt(t, dir, nil, quotaConfigE2E("{daily: 1GiB, over_rate: 1Mbit}", "0"), usersFile())
	recs := d.records("usage state unreadable; moved aside, counting from zero")
	if len(recs) != 1 || recs[0]["level"] != "ERROR" {
		t.Fatalf("log records %v, want one error naming the moved file", recs)
	}
	moved, _ := recs[0]["moved_to"].(string)
	if kept, err := os.ReadFile(moved); err != nil || string(kept) != garbage {
		t.Errorf("moved file %q holds %q, %v; want the damaged bytes", moved, kept, err)
	}
	fetchThrough(t, d.listen, "alice", fixedServer(t, 1000))
	waitToday(t, d, "alice", 1000)
	if u := findUser(usersView(t, d, true), "alice"); u.Today.Total != 1000 {
		t.Errorf("usage after the move: %+v, want 1000 bytes from zero", u.Today)
	}
}

func TestStateDirProblemsStopTheStart(t *testing.T) {
	cfg := quotaConfigE2E("{daily: 1GiB, over_rate: 1Mbit}", "0")
	d := startDaemon(t, cfg, usersFile())
	out, code := runCommand(t, "", "-config", filepath.Join(d.dir, "sockshaper.yaml"))
	if code != 1 || !strings.Contains(out, "is in use by another sockshaper (pid ") {
		t.Errorf("a second daemon on the same state_dir: exit %d, %q", code, out)
	}
	dir := t.TempDir()
	noState := filepath.Join(dir, "nostate.yaml")
	writeFile(t, noState, strings.Replace(cfg, "state_dir: state\n", "", 1))
	writeFile(t, filepath.Join(dir, "users.htpasswd"), usersFile())
	out, code = runCommand(t, "", "check-config", "-config", noState)
	if code != 1 || !strings.Contains(out, "shaping.groups.students.quota: a quota needs state_dir") {
		t.Errorf("check-config of a quota without state_dir: exit %d, %q", code, out)
	}
}

// TestOverRateMidDownload crosses a daily quota during one download: the same
// session goes on at the quota's over_rate, the crossing is counted, and the
// usage view and per-user metrics show the user over.
func TestOverRateMidDownload(t *testing.T) {
	const over = 64000 // bytes/s: 512kbit
	d := startDaemon(t, quotaConfigE2E("{daily: 1MiB, over_rate: 512kbit}", "4MiB"), usersFile())
	c := dialThrough(t, d.listen, "alice", sourceServer(t))
	defer c.Close()
	measure := func(dur time.Duration) float64 {
		c.SetReadDeadline(time.Now().Add(dur))
		n, _ := io.Copy(io.Discard, c)
		return float64(n) / dur.Seconds()
	}
	measure(1500 * time.Millisecond) // 1 MiB at 4 MiB/s, then over
	d.waitMetric(`sockshaper_quota_exceeded_total{group="students"}`, 1)
	measure(500 * time.Millisecond) // the over rate lands within this
	if got := measure(3 * time.Second); got < 0.7*over || got > 1.3*over {
		t.Errorf("over quota the live session moves %.0f B/s, want about %d (±30%%)", got, over)
	}
	u := findUser(usersView(t, d, false), "alice")
	if u == nil || u.Quota == nil || !u.Quota.Over || u.Quota.OverPeriod != "daily" || u.Quota.OverRate != over {
		t.Errorf("usage view of alice: %+v", u)
	}
	if v := d.metric(`sockshaper_user_quota_used_bytes{period="daily",user="alice"}`); v < 1<<20 {
		t.Errorf("user_quota_used_bytes = %v, want at least 1 MiB", v)
	}
	if v := d.metric(`sockshaper_user_quota_limit_bytes{period="daily",user="alice"}`); v != 1<<20 {
		t.Errorf("user_quota_limit_bytes = %v, want 1 MiB", v)
	}
}

// TestUsersViewAndTable reads the usage view as JSON and through the users
// sub-command, sorted both ways, and watches it.
func TestUsersViewAndTable(t *testing.T) {
	d := startDaemon(t, quotaConfigE2E("{daily: 10MiB, monthly: 100MiB, over_rate: 1Mbit}", "0"), users("alice", "bob"))
	fetchThrough(t, d.listen, "alice", fixedServer(t, 2<<20))
	fetchThrough(t, d.listen, "bob", fixedServer(t, 1<<20))
	waitToday(t, d, "alice", 2<<20)
	waitToday(t, d, "bob", 1<<20)
	r := usersView(t, d, false)
	if len(r.Users) != 2 || r.Users[0].User != "alice" || r.Users[0].Group != "students" ||
		r.Users[0].Quota.Daily.Left != 8<<20 || r.Users[1].Quota.Monthly.Used != 1<<20 {
		t.Fatalf("usage view %+v", r)
	}
	// The test config's admin_listen takes a free port; the CLI reads the one
	// the daemon got from a config that names it.
	config := filepath.Join(d.dir, "cli.yaml")
	writeFile(t, config, strings.Replace(quotaConfigE2E("{daily: 1GiB}", "0"), "admin_listen: 127.0.0.1:0", "admin_listen: "+d.admin, 1))
	if out, code := runCommand(t, "", "users", "-config", filepath.Join(d.dir, "sockshaper.yaml")); code != 1 ||
		!strings.Contains(out, "give the address the daemon logged with -admin") {
		t.Errorf("users on a config whose admin port is 0: exit %d, %q", code, out)
	}
	out, code := runCommand(t, "", "users", "-config", config)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[1], "USER") ||
		!strings.HasPrefix(lines[2], "alice") || !strings.HasPrefix(lines[3], "bob") ||
		!strings.Contains(lines[2], "2.0 MiB") || !strings.Contains(lines[2], "daily 20% (8.0 MiB left)") {
		t.Fatalf("users: exit %d\n%s", code, out)
	}
	if out, code := runCommand(t, "", "users", "-config", config, "-sort", "rate", "-n", "1"); code != 0 ||
		strings.Count(strings.TrimSpace(out), "\n") != 2 || !strings.Contains(out, "1 of 2 users by rate") {
		t.Errorf("users -sort rate -n 1: exit %d\n%s", code, out)
	}
	if out, code := runCommand(t, "", "users", "-admin", d.admin, "-json"); code != 0 || !json.Valid([]byte(out)) {
		t.Errorf("users -json: exit %d\n%s", code, out)
	}
	if out, code := runCommand(t, "", "users", "-config", config, "-sort", "name"); code != 2 || !strings.Contains(out, "want bytes or rate") {
		t.Errorf("users -sort name: exit %d, %q", code, out)
	}

	watch := exec.Command(binary, "users", "-config", config, "-watch", "-interval", "200ms")
	stdout, _ := watch.StdoutPipe()
	proctest.DieWithParent(watch)
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(10 * time.Second); strings.Count(seen.String(), "bob ") < 2 && time.Now().Before(deadline); {
		n, err := stdout.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			break
		}
	}
	watch.Process.Signal(syscall.SIGINT)
	err := watch.Wait()
	if strings.Count(seen.String(), "\x1b[2J") < 2 || strings.Count(seen.String(), "alice") < 2 || err != nil {
		t.Errorf("users -watch: two frames expected, exit %v\n%q", err, seen.String())
	}
}

// windowAround returns days and hours of a window in loc from now+from to
// now+to, on the wall clock, on the weekday it starts.
func windowAround(now time.Time, loc *time.Location, from, to time.Duration) (days, hours string) {
	start, end := now.Add(from).In(loc).Truncate(time.Minute), now.Add(to).In(loc).Truncate(time.Minute)
	return strings.ToLower(start.Weekday().String()[:3]), start.Format("15:04") + "-" + end.Format("15:04")
}

// skypeWindowConfig puts 127.0.0.3 in the skype class at 2 MiB/s per user and
// 256 KiB/s during the window "lectures" of days and hours in Asia/Kolkata
// (UTC+05:30, so the test's window is not in the daemon's time zone).
func skypeWindowConfig(days, hours string) string {
	return baseConfig + `
shaping:
  windows:
    lectures: {days: "` + days + `", hours: "` + hours + `", time_zone: Asia/Kolkata}
  apps:
    skype: {per_user: {download: 2MiB}, during: {lectures: {per_user: {download: 256KiB}}}}
apps:
  skype: {networks: [127.0.0.3/32]}
`
}

// sourceServerOn is sourceServer on addr.
func sourceServerOn(t *testing.T, addr string) string {
	ln, err := net.Listen("tcp", addr)
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

// TestWindowChangesSkypeRate runs a skype-class download while a window built
// around the current time is open, then reloads with the window hours away: the
// same session moves from the window's rate to the class's own.
func TestWindowChangesSkypeRate(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	days, hours := windowAround(time.Now(), kolkata, -time.Minute, 30*time.Minute)
	d := startDaemon(t, skypeWindowConfig(days, hours), usersFile())
	c := dialThrough(t, d.listen, "alice", sourceServerOn(t, "127.0.0.3:0"))
	defer c.Close()
	measure := func(dur time.Duration) float64 {
		c.SetReadDeadline(time.Now().Add(dur))
		n, _ := io.Copy(io.Discard, c)
		return float64(n) / dur.Seconds()
	}
	measure(300 * time.Millisecond)
	inside := measure(2 * time.Second)
	if r := usersView(t, d, false); len(r.WindowsOpen) != 1 || r.WindowsOpen[0] != "lectures" {
		t.Errorf("windows open in the usage view: %v, want [lectures] (%s %s Asia/Kolkata)", r.WindowsOpen, days, hours)
	}
	days, hours = windowAround(time.Now(), kolkata, 2*time.Hour, 3*time.Hour)
	writeFile(t, filepath.Join(d.dir, "sockshaper.yaml"), skypeWindowConfig(days, hours))
	d.signal(syscall.SIGHUP)
	d.waitMetric(`sockshaper_config_reloads_total{result="success"}`, 1)
	measure(300 * time.Millisecond)
	outside := measure(2 * time.Second)
	if inside < 0.7*(256<<10) || inside > 1.3*(256<<10) || outside < 0.7*(2<<20) || outside > 1.3*(2<<20) {
		t.Errorf("skype download %.0f KiB/s inside the window, %.0f KiB/s outside; want about 256 and 2048 (±30%%)",
			inside/1024, outside/1024)
	}
}
