package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestCheckConfigWarnsAboutWeakHashes: hashes below cost 10 (htpasswd -B writes 5)
// are named, with the file, on standard error; the check still passes.
func TestCheckConfigWarnsAboutWeakHashes(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "sockshaper.yaml")
	writeFile(t, config, baseConfig)
	usersPath := filepath.Join(dir, "users.htpasswd")
	cost5, err := bcrypt.GenerateFromPassword([]byte(password), 5)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, usersPath, users("alice")+"# staff\ncarol:"+string(cost5)+"\n")
	stdout, stderr, code := runSplit(t, "check-config", "-config", config)
	if code != 0 || !strings.Contains(stdout, "ok (2 users") {
		t.Fatalf("check-config: exit %d, stdout %q, stderr %q; want exit 0 and ok", code, stdout, stderr)
	}
	for _, want := range []string{"warning: " + usersPath + ": bcrypt cost below 10 for 2 users",
		`"alice" (line 1, cost 4)`, `"carol" (line 3, cost 5)`, "sockshaper passwd"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not say %q", stderr, want)
		}
	}

	strong, err := bcrypt.GenerateFromPassword([]byte(password), 10)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, usersPath, "alice:"+string(strong)+"\n")
	if stdout, stderr, code = runSplit(t, "check-config", "-config", config); code != 0 || stderr != "" {
		t.Errorf("cost-10 users file: exit %d, stdout %q, stderr %q; want no warning", code, stdout, stderr)
	}
}

// runSplit runs the binary with args, returning standard output and error apart.
func runSplit(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}
