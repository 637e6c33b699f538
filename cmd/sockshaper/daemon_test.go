package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/proctest"
)

// binary is the sockshaper built once for every test of the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sockshaper-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "sockshaper")
	// -buildvcs=auto stamps the commit as a plain `go build` does, whatever GOFLAGS says.
	build := exec.Command("go", "build", "-race", "-buildvcs=auto", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sockshaper:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTool finds a command the test needs. In CI a missing tool fails the test;
// elsewhere it skips, with the package to install.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: install the Debian package %s (scripts/test.sh does)", name, debianPackage)
	}
	t.Skipf("%s not found: apt-get install %s", name, debianPackage)
	return ""
}

// skipOutsideCI skips a test whose fixture this machine lacks (IPv6, a git
// clone, a free fixed port); in CI (CI set), where every test must run, it fails.
func skipOutsideCI(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("in CI: "+format, args...)
	}
	t.Skipf(format, args...)
}

// process is one running sockshaper binary.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	dir    string
	listen string
	admin  string
	mu     sync.Mutex
	lines  []map[string]any // JSON log records
	exited chan error
}

// startDaemon writes config (and the users file, when users is not empty) into a
// temp dir and starts the binary on it, waiting for its "serving" line. An empty
// config runs the embedded default.
func startDaemon(t *testing.T, config, users string, extraArgs ...string) *process {
	t.Helper()
	return startDaemonWrapped(t, nil, config, users, extraArgs...)
}

// startDaemonWrapped is startDaemon with the binary run by a wrapper command, such
// as prlimit with its options, that execs it (so the process is the daemon).
func startDaemonWrapped(t *testing.T, wrapper []string, config, users string, extraArgs ...string) *process {
	t.Helper()
	return startDaemonAt(t, t.TempDir(), wrapper, config, users, extraArgs...)
}

// startDaemonAt is startDaemonWrapped in dir, so that a test can start the
// daemon again where it ran before (its state_dir, say).
func startDaemonAt(t *testing.T, dir string, wrapper []string, config, users string, extraArgs ...string) *process {
	t.Helper()
	d := &process{t: t, dir: dir, exited: make(chan error, 1)}
	args := []string{"-log-format", "json", "-log-level", "debug"}
	if config != "" {
		writeFile(t, filepath.Join(d.dir, "sockshaper.yaml"), config)
		args = append(args, "-config", filepath.Join(d.dir, "sockshaper.yaml"))
	}
	if users != "" {
		writeFile(t, filepath.Join(d.dir, "users.htpasswd"), users)
	}
	argv := append(append(append(wrapper[:len(wrapper):len(wrapper)], binary), args...), extraArgs...)
	d.cmd = exec.Command(argv[0], argv[1:]...)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	proctest.DieWithParent(d.cmd)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan map[string]any, 1)
	go d.readLog(stderr, serving)
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(d.kill)
	select {
	case rec := <-serving:
		d.listen, _ = rec["listen"].(string)
		d.admin, _ = rec["admin"].(string)
	case err := <-d.exited:
		t.Fatalf("sockshaper exited before serving: %v\n%s", err, d.logText())
	case <-time.After(20 * time.Second):
		t.Fatalf("sockshaper did not start serving\n%s", d.logText())
	}
	return d
}

func (d *process) readLog(r io.Reader, serving chan<- map[string]any) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			rec = map[string]any{"msg": "unparsed", "text": sc.Text()}
		}
		d.mu.Lock()
		d.lines = append(d.lines, rec)
		d.mu.Unlock()
		if rec["msg"] == "serving" {
			serving <- rec
		}
	}
}

// records returns the log records whose msg is msg.
func (d *process) records(msg string) []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []map[string]any
	for _, r := range d.lines {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func (d *process) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	for _, r := range d.lines {
		j, _ := json.Marshal(r)
		b.Write(append(j, '\n'))
	}
	return b.String()
}

func (d *process) signal(sig syscall.Signal) {
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
}

// waitExit waits for the process to end and returns its exit code.
func (d *process) waitExit(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.exited:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		d.t.Fatalf("sockshaper still running after %v\n%s", timeout, d.logText())
	}
	return -1
}

func (d *process) kill() {
	if d.cmd.ProcessState == nil {
		d.cmd.Process.Kill()
		<-d.exited
	}
	if d.t.Failed() {
		d.t.Logf("sockshaper log:\n%s", d.logText())
	}
}

// metric returns the value of one series from /metrics, e.g.
// `sockshaper_sessions_total{app="other",command="connect",front="socks5",result="ok"}`; labels
// must be in name order, as the exposition format writes them. Missing is -1.
func (d *process) metric(series string) float64 {
	d.t.Helper()
	body := httpGet(d.t, "http://"+d.admin+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				d.t.Fatalf("series %s: %v", series, err)
			}
			return v
		}
	}
	return -1
}

// waitMetric polls until series reaches want; counters settle after a close.
func (d *process) waitMetric(series string, want float64) {
	d.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := d.metric(series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s = %v, want %v", series, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitMetricAbove waits up to 5 s for series to exceed floor.
func (d *process) waitMetricAbove(series string, floor float64) {
	d.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for got := d.metric(series); got <= floor; got = d.metric(series) {
		if time.Now().After(deadline) {
			d.t.Fatalf("%s = %v, want above %v", series, got, floor)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	body, _ := httpGetStatus(t, url)
	return body
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpGetStatus(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
