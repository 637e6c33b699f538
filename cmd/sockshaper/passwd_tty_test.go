package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/bcrypt"
)

// TestPasswdOnTerminalAsksTwice drives `sockshaper passwd alice >> FILE` on a
// real pseudo-terminal: it asks twice; the same password twice appends alice's
// line, two different ones exit 1 with a clear message and leave FILE as it
// was. From a pipe it reads one line (TestPasswd).
func TestPasswdOnTerminalAsksTwice(t *testing.T) {
	for _, tc := range []struct {
		name, first, second string
		code                int
		stderr              string
	}{
		{"match", "wonderland", "wonderland", 0, "Retype password: "},
		{"mismatch", "wonderland", "wonderlnad", 1, "the passwords do not match; nothing written"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "users.htpasswd")
			writeFile(t, file, "bob:$2y$04$existing\n")
			code, stderr := passwdOnTerminal(t, file, tc.first, tc.second)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d, terminal %q; want %d and %q", code, stderr, tc.code, tc.stderr)
			}
			if strings.Contains(stderr, tc.first) {
				t.Errorf("the password was echoed: %q", stderr)
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if tc.code != 0 {
				if string(b) != "bob:$2y$04$existing\n" {
					t.Errorf("file after a mismatch: %q, want it untouched", b)
				}
				return
			}
			user, hash, _ := strings.Cut(lines[len(lines)-1], ":")
			if len(lines) != 2 || user != "alice" ||
				bcrypt.CompareHashAndPassword([]byte(strings.Replace(hash, "$2y$", "$2a$", 1)), []byte(tc.first)) != nil {
				t.Errorf("file %q: want bob's line, then alice's with her password", b)
			}
		})
	}
}

// passwdOnTerminal runs passwd alice with a pty as its terminal (standard
// input and error) and its standard output appended to file, as a shell's
// `>> file` does; it types first and second at the prompts and returns the
// exit code and what the terminal showed.
func passwdOnTerminal(t *testing.T, file, first, second string) (int, string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pty: %v", err)
	}
	defer ptmx.Close()
	out, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(binary, "passwd", "alice")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, out, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	screen := &terminal{}
	go io.Copy(screen, ptmx)
	screen.waitFor(t, "Password: ")
	ptmx.Write([]byte(first + "\r"))
	screen.waitFor(t, "Retype password: ")
	ptmx.Write([]byte(second + "\r"))
	cmd.Wait()
	time.Sleep(50 * time.Millisecond) // the last message's bytes
	return cmd.ProcessState.ExitCode(), screen.String()
}

// terminal collects what a pty shows.
type terminal struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *terminal) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *terminal) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *terminal) waitFor(t *testing.T, text string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.String(), text); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("terminal shows %q, want %q", s.String(), text)
		}
	}
}
