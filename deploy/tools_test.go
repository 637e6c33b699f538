package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the repository root as seen from this package's folder.
const repoRoot = ".."

// requireTool finds a command a test needs, on PATH or in the Go tools folder
// (scripts/test.sh installs Go-built tools there). In CI a missing tool fails the
// test; elsewhere it skips, naming how to install it.
func requireTool(t *testing.T, name, install string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		path := filepath.Join(strings.TrimSpace(string(gopath)), "bin", name)
		if _, err := os.Stat(path); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: %s (scripts/test.sh does)", name, install)
	}
	t.Skipf("%s not found: %s", name, install)
	return ""
}

// requireRoot skips (fails in CI) unless the test runs as root, which installing a
// package or building an image here needs.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test needs root (CI runs as root)")
	}
	t.Skip("needs root")
}

// runTool runs a command and returns its combined output; a failure fails the test.
func runTool(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	out, err := tryTool(stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

// tryTool runs a command and returns its combined output and error.
func tryTool(stdin string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// readRepoFile returns a file of the repository as text.
func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tryToolIn is tryTool in folder dir.
func tryToolIn(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		out = append(out, ee.Stderr...)
	}
	return string(out), err
}
