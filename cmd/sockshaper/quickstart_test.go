package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadmeQuickStart runs the README's offline quick start as an operator
// pastes it: the ```bash block under "Quick start (offline)", unchanged, in bash
// from the clone's root. It runs in a network namespace of its own (loopback
// only), so that the block's fixed ports (8000, 1080, 9180) meet no other test's
// and nothing can leave the machine. Its output must be the handful of lines
// the README promises, and the block must stop what it started: after it ends,
// no process of its group is left.
func TestReadmeQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the daemon: not in -short")
	}
	for _, tool := range [][2]string{{"bash", "bash"}, {"go", "golang"}, {"python3", "python3"},
		{"curl", "curl"}, {"unshare", "util-linux"}, {"ip", "iproute2"}} {
		requireTool(t, tool[0], tool[1])
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := quickStartBlock(string(readme))
	if block == "" {
		t.Fatal("README.md has no ```bash block under a heading \"Quick start\"")
	}
	if out, err := exec.Command("unshare", "-rn", "true").CombinedOutput(); err != nil {
		skipOutsideCI(t, "unshare -rn (user and network namespaces): %v %s", err, out)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	// The block runs as pasted (no bash -e); only lo comes up in the namespace.
	// Its output goes to files, not pipes, so that a server the block leaves
	// running cannot hold the test up.
	dir := t.TempDir()
	stdout, stderr := createFile(t, filepath.Join(dir, "stdout")), createFile(t, filepath.Join(dir, "stderr"))
	cmd := exec.CommandContext(ctx, "unshare", "-rn", "bash", "-c", "ip link set lo up && exec bash -s")
	cmd.Dir = repoRoot
	cmd.Stdin = strings.NewReader(block)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err = cmd.Run()
	pgid := cmd.Process.Pid
	left := syscall.Kill(-pgid, 0) == nil // before any cleanup of ours
	syscall.Kill(-pgid, syscall.SIGKILL)
	out, _ := os.ReadFile(stdout.Name())
	errOut, _ := os.ReadFile(stderr.Name())
	t.Logf("the quick start printed:\n%s", out)
	if err != nil {
		t.Fatalf("the quick start failed: %v\nstderr:\n%s", err, errOut)
	}
	if left {
		t.Error("the quick start left a process of its group running: its last line must stop what it started")
	}
	for _, problem := range quickStartProblems(string(out)) {
		t.Error(problem)
	}
}

// quickStartBlock returns the first ```bash block after the README heading
// that starts with "Quick start", "" if there is none.
func quickStartBlock(readme string) string {
	_, rest, ok := strings.Cut(readme, "\n## Quick start")
	if !ok {
		return ""
	}
	_, rest, ok = strings.Cut(rest, "\n```bash\n")
	if !ok {
		return ""
	}
	block, _, ok := strings.Cut(rest, "\n```\n")
	if !ok {
		return ""
	}
	return block + "\n"
}

// quickStartProblems checks the quick start's output against what the README
// says it prints: the check's verdict and budgets, the healthcheck, the page,
// the session's accounting line and its count, and no more than a handful of
// lines.
func quickStartProblems(out string) []string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var problems []string
	if len(lines) > 8 {
		problems = append(problems, fmt.Sprintf("it printed %d lines; the README promises a handful", len(lines)))
	}
	for _, want := range []struct{ what, pattern string }{
		{"the check's verdict", `(?m)^demo\.yaml: ok\b`},
		{"the budgets", `(?m)^budgets at .*max_sessions=\d+`},
		{"the healthcheck", `(?m)^ok: http://127\.0\.0\.1:9180/readyz$`},
		{"the page", `(?m)^hello through sockshaper$`},
		{"the accounting line", `(?m)msg=session .*front=socks5 .*destination=127\.0\.0\.1:8000 .*result=ok .*bytes_down=[1-9]`},
		{"the session's count", `(?m)^sockshaper_sessions_total\{[^}]*front="socks5"[^}]*result="ok"[^}]*\} 1$`},
	} {
		if !regexp.MustCompile(want.pattern).MatchString(out) {
			problems = append(problems, "the output lacks "+want.what+" (/"+want.pattern+"/)")
		}
	}
	return problems
}

// createFile creates path, closed when the test ends.
func createFile(t *testing.T, path string) *os.File {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
