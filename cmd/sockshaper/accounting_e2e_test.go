package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// accountingLines reads the accounting lines of the files, failing on any
// line that is not one whole JSON record (a split or mixed line), and
// returns the session lines' destination fields.
func accountingLines(t *testing.T, paths ...string) []string {
	t.Helper()
	var dests []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal(l, &rec); err != nil {
				t.Fatalf("%s: not one JSON record: %v: %q", p, err, l)
			}
			if rec["msg"] == "session" {
				dests = append(dests, fmt.Sprint(rec["destination"]))
			}
		}
	}
	return dests
}

// churnSessions runs whole sessions (login, CONNECT, 5 bytes each way, close)
// from workers until stop closes or n sessions are done (n 0: no bound), and
// returns how many completed.
func churnSessions(t *testing.T, proxyAddr, target string, workers int, n int64, stop <-chan struct{}) int64 {
	t.Helper()
	dialer := socksDialer(t, proxyAddr, "alice")
	var done atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 5)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if n > 0 && done.Add(1) > n {
					done.Add(-1)
					return
				}
				c, err := dialer.Dial("tcp", target)
				if err != nil {
					t.Errorf("session: %v", err)
					return
				}
				c.SetDeadline(time.Now().Add(20 * time.Second))
				_, err = c.Write([]byte("hello"))
				if err == nil {
					_, err = io.ReadFull(c, buf)
				}
				c.Close()
				if err != nil {
					t.Errorf("session: %v", err)
					return
				}
				if n == 0 {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return done.Load()
}

// The accounting lines are buffered (issue 24): a SIGTERM right after the
// last session must still leave every line in the file.
func TestAccountingLinesAllWrittenAtSIGTERM(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	d := startDaemon(t, baseConfig, usersFile(), "-access-log", logPath)
	echoAddr := echoServer(t)
	const n = 300
	got := churnSessions(t, d.listen, echoAddr, 8, n, nil)
	d.signal(syscall.SIGTERM)
	if code := d.waitExit(20 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if lines := accountingLines(t, logPath); int64(len(lines)) != got || got != n {
		t.Errorf("%d sessions, %d accounting lines after SIGTERM, want %d of each", got, len(lines), n)
	}
}

// Reopening the access log (logrotate's move, then SIGHUP) while sessions
// come and go loses no line and splits none: the buffered lines go to the
// old file before the new one is opened.
func TestAccountingLinesSurviveReopenUnderChurn(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	d := startDaemon(t, baseConfig, usersFile(), "-access-log", logPath)
	echoAddr := echoServer(t)
	stop := make(chan struct{})
	total := make(chan int64, 1)
	go func() { total <- churnSessions(t, d.listen, echoAddr, 6, 0, stop) }()
	files := []string{}
	for i := range 4 {
		time.Sleep(300 * time.Millisecond)
		old := fmt.Sprintf("%s.%d", logPath, i)
		if err := os.Rename(logPath, old); err != nil {
			t.Fatal(err)
		}
		files = append(files, old)
		d.signal(syscall.SIGHUP)
		d.waitMetric(`sockshaper_config_reloads_total{result="success"}`, float64(i+1))
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	got := <-total
	d.signal(syscall.SIGTERM)
	if code := d.waitExit(20 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	lines := accountingLines(t, append(files, logPath)...)
	if got < 50 || int64(len(lines)) != got {
		t.Errorf("%d sessions, %d accounting lines over %d files, want as many (and at least 50 sessions)", got, len(lines), len(files)+1)
	}
	for _, f := range files {
		if len(accountingLines(t, f)) == 0 {
			t.Errorf("%s has no session line: the reopen took no turn under churn", f)
		}
	}
}
