package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netnsWrapper returns a command that runs the daemon in network and user
// namespaces of its own, with lo up and addrs on it: public addresses (a
// Microsoft network, say) that the test can connect to while no packet can
// leave for the Internet, since the namespace has no other interface. The
// user namespace lets it run without root where the kernel allows that.
func netnsWrapper(t *testing.T, addrs ...string) []string {
	t.Helper()
	unshare := requireTool(t, "unshare", "util-linux")
	requireTool(t, "nsenter", "util-linux")
	requireTool(t, "ip", "iproute2")
	if out, err := exec.Command(unshare, "-rn", "true").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("unshare -rn: %v %s: the test needs user and network namespaces", err, out)
		}
		t.Skipf("no user and network namespaces here: unshare -rn: %v %s", err, out)
	}
	script := "ip link set lo up"
	for _, a := range addrs {
		script += " && ip addr add " + a + " dev lo"
	}
	return []string{unshare, "-rn", "sh", "-c", script + ` && exec "$@"`, "sh"}
}

// curlInNetns runs curl through the daemon's SOCKS5 listener from inside the
// daemon's namespaces.
func curlInNetns(t *testing.T, d *process, url string) {
	t.Helper()
	proxy := "socks5://alice:" + strings.ReplaceAll(password, " ", "%20") + "@" + d.listen
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(d.cmd.Process.Pid), "-U", "-n", "--preserve-credentials",
		requireTool(t, "curl", "curl"), "-sS", "--max-time", "5", "-x", proxy, url)
	if out, err := cmd.CombinedOutput(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("nsenter curl: %v %s", err, out)
		}
	}
}

// classify sends a CONNECT to dest (host:port) and returns the app class of
// its accounting line. Nothing listens there: the session ends at the dial,
// after the classification.
func classify(t *testing.T, d *process, dest string) string {
	t.Helper()
	n := len(sessionsTo(d, dest))
	curlInNetns(t, d, "http://"+dest+"/")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if recs := sessionsTo(d, dest); len(recs) > n {
			return fmt.Sprint(recs[len(recs)-1]["app"])
		}
	}
	t.Fatalf("no session line for %s\n%s", dest, d.logText())
	return ""
}

func sessionsTo(d *process, dest string) []map[string]any {
	var out []map[string]any
	for _, r := range d.records("session") {
		if r["destination"] == dest {
			out = append(out, r)
		}
	}
	return out
}

// TestAppsFileClassifies: the daemon loads the file update-m365 wrote and
// classifies by it (52.112.0.1 of set 11 is skype; 13.107.64.1, which the
// built-in class had and the list no longer has, is not; a port the list does
// not name is not), a reload reads a newer file, and a reload of a broken file
// fails with its file:line:field and keeps the rules in force.
func TestAppsFileClassifies(t *testing.T) {
	wrapper := netnsWrapper(t, "52.112.0.1/32", "13.107.64.1/32")
	srv := newM365Server(t)
	dir := t.TempDir()
	apps := filepath.Join(dir, "m365-skype.yaml")
	update := func() {
		t.Helper()
		if stdout, stderr, code := runSplit(t, "apps", "update-m365", "-url", srv.URL, "-out", apps); code != 0 {
			t.Fatalf("update-m365: exit %d\n%s\n%s", code, stdout, stderr)
		}
	}
	update()
	config := baseConfig + "apps_file: m365-skype.yaml\n"
	writeFile(t, filepath.Join(dir, "sockshaper.yaml"), config)
	writeFile(t, filepath.Join(dir, "users.htpasswd"), usersFile())
	stdout, stderr, code := runSplit(t, "check-config", filepath.Join(dir, "sockshaper.yaml"))
	if code != 0 || !strings.Contains(stdout, "apps file "+apps+" (version 2025013000") || strings.Contains(stderr, "apps file") {
		t.Fatalf("check-config: exit %d\n%s\n%s", code, stdout, stderr)
	}

	d := startDaemonAt(t, dir, wrapper, config, usersFile())
	for dest, want := range map[string]string{"52.112.0.1:443": "skype", "13.107.64.1:443": "other", "52.112.0.1:8080": "other"} {
		if got := classify(t, d, dest); got != want {
			t.Errorf("%s classified %s, want %s", dest, got, want)
		}
	}

	srv.set([]byte(`{"instance":"Worldwide","latest":"2025013001"}`), withTeamsNetwork(t, srv.endpoints, "13.107.64.0/18"))
	update()
	d.signal(syscall.SIGHUP)
	if waitRecords(d, "reloaded", 1) != 1 {
		t.Fatalf("no reload\n%s", d.logText())
	}
	if got := classify(t, d, "13.107.64.1:443"); got != "skype" {
		t.Errorf("after the reload, 13.107.64.1:443 classified %s, want skype (the new file's)", got)
	}

	good := readTestdata(t, apps)
	broken := bytes.Replace(good, []byte("- 13.107.64.0/18"), []byte("- 13.107.64.0/33"), 1)
	writeFile(t, apps, string(broken))
	d.signal(syscall.SIGHUP)
	if waitRecords(d, "reload failed; keeping the running config", 1) != 1 {
		t.Fatalf("the broken file was not refused\n%s", d.logText())
	}
	line := 1 + bytes.Count(broken[:bytes.Index(broken, []byte("13.107.64.0/33"))], []byte("\n"))
	want := fmt.Sprintf(`%s:%d: apps.skype.networks[`, apps, line)
	if err := fmt.Sprint(d.records("reload failed; keeping the running config")[0]["err"]); !strings.Contains(err, want) ||
		!strings.Contains(err, `"13.107.64.0/33" is not a CIDR`) {
		t.Errorf("reload error %q, want it to name %s", err, want)
	}
	if got := classify(t, d, "13.107.64.1:443"); got != "skype" {
		t.Errorf("after the failed reload, 13.107.64.1:443 classified %s, want skype (the rules in force)", got)
	}
}
