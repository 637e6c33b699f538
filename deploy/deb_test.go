package deploy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/sockshaper/sockshaper/internal/proctest"
)

// debVersion names the package the test builds, so that nothing mistakes it for a
// release.
const debVersion = "0.0.0~test1"

// TestDebianPackage builds the .deb with scripts/package.sh, installs it with dpkg on
// this machine, checks what an operator meets (files, user, conffiles, the binary on
// the installed config, the unit, the logrotate snippet with a real rotation and
// reopen) and purges it, removing the user it created: the machine ends as it began.
func TestDebianPackage(t *testing.T) {
	requireRoot(t)
	dpkg := requireTool(t, "dpkg", "apt-get install dpkg")
	pgrep := requireTool(t, "pgrep", "apt-get install procps")
	leftover := purgeLeftoverTestPackage(t, dpkg)
	_, userErr := tryTool("", "getent", "passwd", "sockshaper")
	// A user left by a killed run of this test is this test's to remove.
	userExisted := userErr == nil && !leftover

	out := runToolEnv(t, []string{"VERSION=" + debVersion}, "bash", filepath.Join(repoRoot, "scripts/package.sh"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	deb := filepath.Join(repoRoot, lines[len(lines)-1])
	if want := fmt.Sprintf("sockshaper_%s_", debVersion); !strings.HasPrefix(filepath.Base(deb), want) || !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("package.sh made %q, want dist/%sARCH.deb", deb, want)
	}
	t.Cleanup(func() {
		if out, err := tryTool("", dpkg, "--purge", "sockshaper"); err != nil {
			t.Errorf("dpkg --purge: %v\n%s", err, out)
		}
		if !userExisted {
			tryTool("", "userdel", "sockshaper")
			tryTool("", "groupdel", "sockshaper")
		}
		os.Remove(deb)
	})
	t.Logf("dpkg -c %s:\n%s", filepath.Base(deb), runTool(t, "", dpkg, "-c", deb))
	checkPackageMetadata(t, dpkg, deb)

	install := runTool(t, "", dpkg, "-i", deb)
	if running := processesOf(t, pgrep, "sockshaper"); running != "" {
		t.Errorf("a sockshaper process runs after install without systemd: %s\n%s", running, install)
	}
	checkInstalledFiles(t)
	checkInstalledMonitoring(t)
	checkInstalledBinary(t)
	checkInstalledUnit(t)
	checkLogrotate(t)

	runTool(t, "", dpkg, "--purge", "sockshaper")
	for _, gone := range []string{"/usr/bin/sockshaper", "/etc/sockshaper", "/etc/logrotate.d/sockshaper", "/var/log/sockshaper",
		"/lib/systemd/system/sockshaper.service", "/etc/systemd/system/multi-user.target.wants/sockshaper.service",
		"/usr/share/sockshaper"} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("%s left after purge", gone)
		}
	}
}

// purgeLeftoverTestPackage purges the package a killed run of this test left
// installed (its version is debVersion), so that one killed run does not fail
// every later one; it reports whether there was one. Any other installed
// sockshaper is this machine's own: the test refuses to touch it.
func purgeLeftoverTestPackage(t *testing.T, dpkg string) bool {
	t.Helper()
	out, err := tryTool("", "dpkg-query", "-W", "-f=${Status} ${Version}", "sockshaper")
	if err != nil || !strings.Contains(out, "installed") {
		return false
	}
	if !strings.HasSuffix(strings.TrimSpace(out), " "+debVersion) {
		t.Fatalf("sockshaper is already installed (%s): the test would change this machine's package", out)
	}
	t.Logf("purging the test package a killed run left: %s", out)
	runTool(t, "", dpkg, "--purge", "sockshaper")
	return true
}

// processesOf returns what pgrep lists of user's processes, "" when there are
// none (pgrep's exit status 1). Any other failure of pgrep fails the test: it
// must not pass for "no process".
func processesOf(t *testing.T, pgrep, user string) string {
	t.Helper()
	out, err := tryTool("", pgrep, "-a", "-u", user)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return strings.TrimSpace(out)
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return ""
	}
	t.Fatalf("pgrep -u %s: %v\n%s", user, err, out)
	return ""
}

// runToolEnv is runTool with extra environment variables; it returns standard output
// only (package.sh prints the package path on its last line).
func runToolEnv(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out, stderr.String())
	}
	return string(out)
}

func checkInstalledFiles(t *testing.T) {
	for path, want := range map[string]string{
		"/usr/bin/sockshaper":                    "755 root root",
		"/etc/sockshaper":                        "750 root sockshaper",
		"/etc/sockshaper/sockshaper.yaml":        "640 root sockshaper",
		"/etc/logrotate.d/sockshaper":            "644 root root",
		"/lib/systemd/system/sockshaper.service": "644 root root",
		"/usr/share/doc/sockshaper/copyright":    "644 root root",
	} {
		if got := strings.TrimSpace(runTool(t, "", "stat", "-L", "-c", "%a %U %G", path)); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	conffiles := runTool(t, "", "dpkg-query", "-W", "-f=${Conffiles}", "sockshaper")
	for _, c := range []string{"/etc/sockshaper/sockshaper.yaml", "/etc/logrotate.d/sockshaper"} {
		if !strings.Contains(conffiles, " "+c+" ") {
			t.Errorf("%s is not a conffile: %q", c, conffiles)
		}
	}
	user := strings.Split(strings.TrimSpace(runTool(t, "", "getent", "passwd", "sockshaper")), ":")
	var uid int
	fmt.Sscan(user[2], &uid)
	if len(user) != 7 || uid <= 0 || uid >= 1000 || user[5] != "/var/lib/sockshaper" || !strings.HasSuffix(user[6], "nologin") {
		t.Errorf("sockshaper user: %v; want a system user without a login shell", user)
	}
}

func checkInstalledBinary(t *testing.T) {
	rev := strings.TrimSpace(runTool(t, "", "git", "-C", repoRoot, "rev-parse", "HEAD"))
	if out := runTool(t, "", "/usr/bin/sockshaper", "version"); !strings.HasPrefix(out, "sockshaper "+debVersion+" (revision "+rev+")") {
		t.Errorf("installed version: %q", out)
	}
	// The service user reads its config through the group of /etc/sockshaper.
	out := runTool(t, "", "runuser", "-u", "sockshaper", "--", "/usr/bin/sockshaper", "check-config", "/etc/sockshaper/sockshaper.yaml")
	if !strings.Contains(out, "/etc/sockshaper/sockshaper.yaml: ok") {
		t.Errorf("check-config on the installed config: %q", out)
	}
}

func checkInstalledUnit(t *testing.T) {
	tool := requireTool(t, "systemd-analyze", "apt-get install systemd")
	if out, err := tryTool("", tool, "verify", "/lib/systemd/system/sockshaper.service"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify on the installed unit: %v\n%s", err, out)
	}
}

// checkLogrotate checks the snippet with logrotate -d, then does what the daemon's
// unit and logrotate do together: the service user writes the accounting log, a
// forced rotation moves it, SIGHUP (the postrotate's reload; no systemd here) makes
// the daemon reopen it, and the next session lands in the new file.
func checkLogrotate(t *testing.T) {
	logrotate := requireTool(t, "logrotate", "apt-get install logrotate")
	if out := runTool(t, "", logrotate, "-d", "/etc/logrotate.d/sockshaper"); strings.Contains(strings.ToLower(out), "error") {
		t.Errorf("logrotate -d:\n%s", out)
	}
	// As systemd's LogsDirectory= would create it.
	runTool(t, "", "install", "-d", "-o", "sockshaper", "-g", "sockshaper", "-m", "0750", "/var/log/sockshaper")
	dir := worldReadableDir(t)
	listen := freeAddr(t)
	write(t, filepath.Join(dir, "sockshaper.yaml"), fmt.Sprintf(`listen: %q
admin_listen: ""
auth: {users_file: ""}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
`, listen), 0o644)
	daemon := exec.Command("/usr/bin/sockshaper", "-config", filepath.Join(dir, "sockshaper.yaml"),
		"-log-format", "json", "-access-log", "/var/log/sockshaper/access.log")
	daemon.SysProcAttr = &syscall.SysProcAttr{Credential: serviceUser(t)}
	// A file, not a buffer: the test reads the log while the daemon writes it.
	log, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	daemon.Stdout, daemon.Stderr = log, log
	proctest.DieWithParent(daemon)
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("daemon log:\n%s", b)
		}
	}()

	target := echoTarget(t)
	waitSession(t, listen, target, "/var/log/sockshaper/access.log", 1)
	runTool(t, "", logrotate, "-f", "-s", filepath.Join(dir, "logrotate.state"), "/etc/logrotate.d/sockshaper")
	if _, err := os.Stat("/var/log/sockshaper/access.log.1"); err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	daemon.Process.Signal(syscall.SIGHUP) // what the postrotate's reload sends
	// The daemon reopens the accounting log before it logs "reloaded"; a session
	// that ended before the signal was handled belongs in the rotated file.
	deadline := time.Now().Add(10 * time.Second)
	for b, _ := os.ReadFile(log.Name()); !strings.Contains(string(b), `"msg":"reloaded"`); b, _ = os.ReadFile(log.Name()) {
		if time.Now().After(deadline) {
			t.Fatal("no reload logged 10 s after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitSession(t, listen, target, "/var/log/sockshaper/access.log", 1)
	if n := countLines(t, "/var/log/sockshaper/access.log.1"); n != 1 {
		t.Errorf("rotated file has %d accounting lines, want the one before rotation", n)
	}
}

// serviceUser is the installed sockshaper user, to run the daemon as the unit does.
func serviceUser(t *testing.T) *syscall.Credential {
	u, err := user.Lookup("sockshaper")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
}

// worldReadableDir is a temporary folder that another user (the service's) can
// read: t.TempDir's parent is private to root.
func worldReadableDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "sockshaper-deploy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	mkdir(t, dir, 0o755)
	return dir
}

// waitSession relays one session through the proxy at listen and waits until path
// holds want accounting lines (the daemon creates it again after a reopen).
func waitSession(t *testing.T, listen, target, path string, want int) {
	deadline := time.Now().Add(15 * time.Second)
	d, _ := xproxy.SOCKS5("tcp", listen, nil, xproxy.Direct)
	var c net.Conn
	var err error
	for c, err = d.Dial("tcp", target); err != nil; c, err = d.Dial("tcp", target) {
		if time.Now().After(deadline) {
			t.Fatalf("no session through the installed daemon: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	c.Close()
	for countLines(t, path) != want {
		if time.Now().After(deadline) {
			ls, _ := tryTool("", "ls", "-la", filepath.Dir(path))
			t.Fatalf("%s: %d accounting lines, want %d\n%s", path, countLines(t, path), want, ls)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countLines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// echoTarget is a loopback echo server for sessions through the installed daemon.
func echoTarget(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}
