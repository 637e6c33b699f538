package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	usagestore "github.com/sockshaper/sockshaper/usage"
)

// startExpectingExit runs the daemon on config in dir and returns its output
// and exit code; a daemon still running after 20 s (it started when it should
// not have) is killed and fails the test.
func startExpectingExit(t *testing.T, dir, config string, args ...string) (string, int) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "sockshaper.yaml"), config)
	writeFile(t, filepath.Join(dir, "users.htpasswd"), usersFile())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"-config", filepath.Join(dir, "sockshaper.yaml")}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the daemon started and served, want it to refuse:\n%s", out.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// TestBadUsageEntrySetAside starts the daemon on a usage file with one entry
// it cannot use beside alice's, who is over her refusing allowance: alice
// stays refused (a whole-file reset let a user already over quota download
// 10.9 MB more), bob's entry is logged once and kept aside, and the metric
// counts it.
func TestBadUsageEntrySetAside(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "state"), 0o750)
	today := time.Now().UTC()
	file := `{"version": 1, "users": {
 "alice": {"day": "` + today.Format("2006-01-02") + `", "month": "` + today.Format("2006-01") + `", "day_download": 2000000, "month_download": 2000000},
 "bob": {"day": "` + today.Format("2006-01-02") + `", "month": "` + today.Format("2006-01") + `", "day_upload": -1}}}`
	writeFile(t, filepath.Join(dir, "state", usagestore.StateFile), file)
	d := startDaemonAt(t, dir, nil, quotaConfigE2E("{daily: 1MiB, over_rate: 0}", "0"), users("alice", "bob"))
	dialer, err := xproxy.SOCKS5("tcp", d.listen, &xproxy.Auth{User: "alice", Password: password}, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := dialer.Dial("tcp", echoServer(t)); err == nil {
		c.Close()
		t.Fatal("alice, over her refusing allowance before the restart, was admitted")
	}
	recs := d.records("usage state entry unusable; set aside, the user counts from zero")
	if len(recs) != 1 || recs[0]["user"] != "bob" || recs[0]["level"] != "ERROR" {
		t.Fatalf("log records %v, want one error naming bob", recs)
	}
	kept, _ := recs[0]["kept_in"].(string)
	if data, err := os.ReadFile(kept); err != nil || string(data) != file {
		t.Errorf("kept %q: %q, %v; want the file's bytes", kept, data, err)
	}
	d.waitMetric(`sockshaper_usage_state_set_aside_total{what="entry"}`, 1)
	roundTrip(t, dialThrough(t, d.listen, "bob", echoServer(t)), "bob counts from zero")
}

// TestStateDirRefusals: a state_dir whose lock is a symbolic link stops the
// start and leaves the link's target whole (it was truncated); one every user
// may write to stops the start and check-config, naming it and its mode.
func TestStateDirRefusals(t *testing.T) {
	cfg := quotaConfigE2E("{daily: 1GiB, over_rate: 1Mbit}", "0")
	dir := t.TempDir()
	precious := filepath.Join(dir, "precious")
	writeFile(t, precious, "not to be truncated")
	os.Mkdir(filepath.Join(dir, "state"), 0o750)
	os.Symlink(precious, filepath.Join(dir, "state", "lock"))
	out, code := startExpectingExit(t, dir, cfg)
	if code != 1 || !strings.Contains(out, "lock is a symbolic link") {
		t.Errorf("start with a linked lock: exit %d, %q", code, out)
	}
	if data, _ := os.ReadFile(precious); string(data) != "not to be truncated" {
		t.Errorf("the lock link's target holds %q", data)
	}

	open := t.TempDir()
	state := filepath.Join(open, "state")
	os.Mkdir(state, 0o750)
	os.Chmod(state, 0o777)
	want := "state_dir " + state + " is writable by every user (mode 0777)"
	if out, code := startExpectingExit(t, open, cfg); code != 1 || !strings.Contains(out, want) {
		t.Errorf("start with a world-writable state_dir: exit %d, %q", code, out)
	}
	if out, code := runCommand(t, "", "check-config", "-config", filepath.Join(open, "sockshaper.yaml")); code != 1 || !strings.Contains(out, want) {
		t.Errorf("check-config of a world-writable state_dir: exit %d, %q", code, out)
	}
	os.Chmod(state, 0o750)
	if out, code := runCommand(t, "", "check-config", "-config", filepath.Join(open, "sockshaper.yaml")); code != 0 {
		t.Errorf("check-config once fixed: exit %d, %q", code, out)
	}
}
