package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size bytes, mode 0750, on dir until the test
// ends. Mounting takes root (CAP_SYS_ADMIN): elsewhere the test is skipped,
// and in CI it fails.
func mountTmpfs(t *testing.T, dir string, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0750"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a tmpfs on %s: %v (the test runs as root)", dir, err)
		}
		t.Skipf("mount a tmpfs on %s: %v; run as root", dir, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
}

// fill writes into dir until its filesystem is full and returns the file.
func fill(t *testing.T, dir string) string {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatal(err)
			}
			return name
		}
	}
}

// waitRecord polls the daemon's log for a record with msg.
func waitRecord(t *testing.T, d *process, msg string, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if recs := d.records(msg); len(recs) > 0 {
			return recs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within %v", msg, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUsageStateOnFullDisk keeps usage on a real filesystem that fills up: the
// failed writes are counted, warned about once, and shown in /readyz's body
// while it stays 200; when space comes back the next write succeeds, is
// logged, and clears it.
func TestUsageStateOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	mountTmpfs(t, state, "64k")
	d := startDaemonAt(t, dir, nil, quotaConfigE2E("{daily: 1GiB, over_rate: 1Mbit}", "0"), usersFile())
	started := d.metric("sockshaper_usage_state_last_write_success_timestamp_seconds")
	if now := float64(time.Now().Unix()); started < now-30 || started > now+1 {
		t.Errorf("last write success at start = %v, want about now (%v)", started, now)
	}
	filler := fill(t, state)
	fetchThrough(t, d.listen, "alice", fixedServer(t, 1000))
	waitToday(t, d, "alice", 1000)
	failed := waitRecord(t, d, "writing usage state failed; counting goes on in memory, the write is tried again", 15*time.Second)
	if failed["level"] != "WARN" || !strings.Contains(failed["err"].(string), "no space left on device") {
		t.Errorf("failure logged as %v", failed)
	}
	deadline := time.Now().Add(15 * time.Second)
	for d.metric("sockshaper_usage_state_write_failures_total") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("fewer than 2 failed writes counted in 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(d.records("writing usage state failed; counting goes on in memory, the write is tried again")); n != 1 {
		t.Errorf("%d warnings for one streak of failures, want 1", n)
	}
	body, code := httpGetStatus(t, "http://"+d.admin+"/readyz")
	if code != 200 || !strings.HasPrefix(body, "ok\nusage state: writes failing since ") || !strings.Contains(body, "no space left on device") {
		t.Errorf("/readyz on a full disk: %d %q, want 200 with the usage state's problem", code, body)
	}
	if v := d.metric("sockshaper_usage_state_last_write_success_timestamp_seconds"); v != started {
		t.Errorf("last write success moved to %v while every write failed", v)
	}

	freed := float64(time.Now().Unix())
	os.Remove(filler)
	waitRecord(t, d, "usage state written again", 15*time.Second)
	if body, code := httpGetStatus(t, "http://"+d.admin+"/readyz"); code != 200 || body != "ok" {
		t.Errorf("/readyz after the disk has room again: %d %q", code, body)
	}
	if v := d.metric("sockshaper_usage_state_last_write_success_timestamp_seconds"); v < freed-1 {
		t.Errorf("last write success %v, want after the disk had room again (%v)", v, freed)
	}
	if got := savedToday(t, dir, "alice"); got != 1000 {
		t.Errorf("state file holds %d bytes for alice after recovery, want 1000", got)
	}
}
