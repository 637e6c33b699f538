package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// TestCLIInvocations runs the dispatcher in-process: what each invocation prints on
// which stream, and its exit code. Help goes to standard output with exit 0; every
// wrong invocation says what was wrong and shows the usage on standard error, exit 2.
func TestCLIInvocations(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, "listen: 127.0.0.1:1080\nauth: {users_file: \"\"}\n")
	everyFlag := []string{"-config", "-log-format", "-log-level", "-access-log", "-url", "-timeout"}
	everyCommand := []string{"serve", "check-config", "passwd", "healthcheck", "version", "help"}
	tests := []struct {
		args       []string
		code       int
		stdout     []string // substrings of standard output
		stderr     []string // substrings of standard error
		quietOut   bool     // nothing on standard output
		quietError bool     // nothing on standard error
	}{
		{args: []string{"-h"}, code: 0, stdout: append(everyCommand, everyFlag...), quietError: true},
		{args: []string{"--help"}, code: 0, stdout: everyFlag, quietError: true},
		{args: []string{"help"}, code: 0, stdout: append(everyCommand, everyFlag...), quietError: true},
		{args: []string{"help", "check-config"}, code: 0, stdout: []string{"usage: sockshaper check-config [flags] [FILE]", "-config FILE"}, quietError: true},
		{args: []string{"help", "passwd"}, code: 0, stdout: []string{"usage: sockshaper passwd USER"}, quietError: true},
		{args: []string{"help", "healthcheck"}, code: 0, stdout: []string{"-url URL", "-timeout DURATION", "-config FILE"}, quietError: true},
		{args: []string{"check-config", "-h"}, code: 0, stdout: []string{"sockshaper check-config"}, quietError: true},
		{args: []string{"serve", "-h"}, code: 0, stdout: everyCommand, quietError: true},
		{args: []string{"check-config", good}, code: 0, stdout: []string{good + ": ok"}, quietError: true},
		{args: []string{"check-config", "-config", good}, code: 0, stdout: []string{good + ": ok"}, quietError: true},
		{args: []string{"check-config", "-config", good, good}, code: 0, stdout: []string{good + ": ok"}, quietError: true},
		{args: []string{"check-config"}, code: 0, stdout: []string{"embedded"}, quietError: true},
		{args: []string{"check-config", filepath.Join(dir, "absent.yaml")}, code: 1, stderr: []string{"absent.yaml"}, quietOut: true},
		{args: []string{"check-config", "-config", good, "other.yaml"}, code: 2, stderr: []string{"two configs", "usage: sockshaper check-config"}, quietOut: true},
		{args: []string{"check-config", good, "-log-level", "debug"}, code: 2, stderr: []string{`unexpected argument "-log-level" (flags go before arguments)`, "usage:"}, quietOut: true},
		{args: []string{"check-config", "a.yaml", "b.yaml"}, code: 2, stderr: []string{`unexpected argument "b.yaml"`}, quietOut: true},
		{args: []string{"passwd"}, code: 2, stderr: []string{"missing argument USER", "usage: sockshaper passwd USER"}, quietOut: true},
		{args: []string{"passwd", "a", "b"}, code: 2, stderr: []string{`unexpected argument "b"`}, quietOut: true},
		{args: []string{"version", "x"}, code: 2, stderr: []string{`unexpected argument "x"`, "usage: sockshaper version"}, quietOut: true},
		{args: []string{"help", "nosuch"}, code: 2, stderr: []string{`unknown command "nosuch"`}, quietOut: true},
		{args: []string{"nosuch"}, code: 2, stderr: append([]string{`unknown command "nosuch"`}, everyCommand...), quietOut: true},
		{args: []string{"/etc/sockshaper/sockshaper.yaml"}, code: 2, stderr: []string{"sockshaper -config FILE"}, quietOut: true},
		{args: []string{"-bogus"}, code: 2, stderr: []string{"flag provided but not defined: -bogus", "usage: sockshaper serve"}, quietOut: true},
		{args: []string{"-config"}, code: 2, stderr: []string{"flag needs an argument: -config"}, quietOut: true},
		{args: []string{"serve", "extra"}, code: 2, stderr: []string{`unexpected argument "extra"`}, quietOut: true},
		{args: []string{"healthcheck", "-timeout", "soon"}, code: 2, stderr: []string{`invalid value "soon" for flag -timeout`}, quietOut: true},
		{args: []string{"healthcheck", "-url", "http://x/", "-config", good}, code: 2, stderr: []string{"give -config or -url, not both"}, quietOut: true},
		{args: []string{"-log-format", "xml"}, code: 1, stderr: []string{"-log-format: want text or json"}, quietOut: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, strings.NewReader(""), &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, &stdout, &stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, &stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, &stderr)
				}
			}
			if tt.quietOut && stdout.Len() > 0 {
				t.Errorf("unexpected stdout: %s", &stdout)
			}
			if tt.quietError && stderr.Len() > 0 {
				t.Errorf("unexpected stderr: %s", &stderr)
			}
		})
	}
}

// TestEveryCommandHasUsage keeps the table honest: each entry documents itself and
// help names it.
func TestEveryCommandHasUsage(t *testing.T) {
	var all bytes.Buffer
	writeUsage(&all)
	for _, c := range commands() {
		if c.summary == "" || c.run == nil {
			t.Errorf("%s: summary or run missing", c.name)
		}
		if c.minArgs > 0 && c.args == "" {
			t.Errorf("%s: takes arguments but usage names none", c.name)
		}
		if !strings.Contains(all.String(), "usage: "+c.synopsis()) {
			t.Errorf("help lacks %q", c.synopsis())
		}
	}
}

func TestDescribeBuild(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261101000000-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-11-01T00:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	devel := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}
	tests := []struct {
		name       string
		ldVersion  string
		ldRevision string
		bi         *debug.BuildInfo
		want       buildInfo
	}{
		{"plain go build in a clone", "", "", stamped, buildInfo{Version: "v0.0.0-20261101000000-0123456789ab+dirty", Revision: "0123456789abcdef", Time: "2026-11-01T00:00:00Z", Modified: true, GoVersion: "go1.26.8"}},
		{"no VCS information", "", "", devel, buildInfo{Version: "devel", Revision: "unknown", GoVersion: "go1.26.8"}},
		{"release with -X", "1.2.0", "fedcba", stamped, buildInfo{Version: "1.2.0", Revision: "fedcba", GoVersion: "go1.26.8"}},
		{"-X version only", "1.2.0", "", stamped, buildInfo{Version: "1.2.0", Revision: "0123456789abcdef", Time: "2026-11-01T00:00:00Z", Modified: true, GoVersion: "go1.26.8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describeBuild(tt.ldVersion, tt.ldRevision, tt.bi); got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if got := describeBuild("", "", nil); got.Version != "devel" || got.Revision != "unknown" || got.GoVersion == "" {
		t.Errorf("no build info: %+v", got)
	}
}

// TestVersionNamesCommit checks the binary built by TestMain (a plain `go build`)
// against the commit of the checkout: the toolchain stamps it, nothing else sets it.
func TestVersionNamesCommit(t *testing.T) {
	git := requireTool(t, "git", "git")
	head, err := exec.Command(git, "rev-parse", "HEAD").Output()
	if err != nil {
		skipOutsideCI(t, "not a git checkout, so the stamped commit goes unchecked: %v", err)
	}
	// The go command stamps only when .git is a directory, not in a `git worktree`
	// (whose .git is a file); CI runs in a clone, where this test must run.
	if fi, err := os.Stat("../../.git"); err != nil || !fi.IsDir() {
		skipOutsideCI(t, "../../.git is not a directory (a git worktree, or an export without .git): the go command does not stamp VCS information here")
	}
	out, code := runCommand(t, "", "version")
	if code != 0 || !strings.Contains(out, "(revision "+strings.TrimSpace(string(head))) {
		t.Errorf("version: exit %d, %q; want revision %s", code, out, head)
	}
}
