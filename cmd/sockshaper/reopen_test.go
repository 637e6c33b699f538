package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")[:bytes.Count(b, []byte("\n"))]
}

func TestReopenableFileBuffersAndFlushes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	r, err := openReopenable(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Write([]byte("one\n"))
	if got := readLines(t, path); len(got) != 0 {
		t.Errorf("a buffered line is in the file at once: %q", got)
	}
	deadline := time.Now().Add(accessFlushEvery + 2*time.Second) // wide: a loaded machine
	for len(readLines(t, path)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the line was not written within %v", accessFlushEvery)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A full buffer goes out whole, before the line that did not fit.
	line := strings.Repeat("x", 1000) + "\n"
	n := accessBufferSize/len(line) + 1
	for range n {
		r.Write([]byte(line))
	}
	if got := len(readLines(t, path)); got < 1+n-1-1 || got > 1+n-1 {
		t.Errorf("after %d lines of %d bytes: %d lines in the file, want the buffer's %d", n, len(line), got-1, n-1)
	}
	// A record larger than the buffer is written at once, after the
	// buffered ones.
	big := strings.Repeat("y", accessBufferSize+1) + "\n"
	r.Write([]byte(big))
	lines := readLines(t, path)
	if len(lines) != 2+n || lines[1+n] != big[:len(big)-1] {
		t.Errorf("after a record larger than the buffer: %d lines, want %d, the last one whole", len(lines), 2+n)
	}
}

func TestReopenableFileCloseWritesEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	r, err := openReopenable(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		fmt.Fprintf(r, "line %d\n", i)
	}
	r.Close()
	if got := len(readLines(t, path)); got != 100 {
		t.Fatalf("after Close: %d lines, want 100", got)
	}
	r.Write([]byte("late\n")) // a session the drain cut, ending after it
	if got := readLines(t, path); len(got) != 101 || got[100] != "late" {
		t.Errorf("a line after Close is not written at once: %d lines", len(got))
	}
}

// A reopen (logrotate moved the file) writes the buffered lines to the old
// file, none split or lost, while writers go on.
func TestReopenableFileReopenUnderWriters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	r, err := openReopenable(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				fmt.Fprintf(r, "{\"w\":%d,\"i\":%d,\"pad\":%q}\n", w, i, strings.Repeat("p", i%300))
			}
		}()
	}
	var rotated []string
	for i := range 5 {
		time.Sleep(5 * time.Millisecond)
		old := fmt.Sprintf("%s.%d", path, i)
		if err := os.Rename(path, old); err != nil {
			t.Fatal(err)
		}
		rotated = append(rotated, old)
		if err := r.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	r.Close()
	seen := map[string]bool{}
	for _, p := range append(rotated, path) {
		for _, l := range readLines(t, p) {
			var w, i int
			var pad string
			if _, err := fmt.Sscanf(l, "{\"w\":%d,\"i\":%d,\"pad\":%q}", &w, &i, &pad); err != nil || len(pad) != i%300 {
				t.Fatalf("%s: line split or mixed: %q", p, l)
			}
			seen[fmt.Sprint(w, i)] = true
		}
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct lines over the files, want %d", len(seen), writers*each)
	}
}

func TestReopenableFileReportsAFailedWriteOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	var errs []error
	r, err := openReopenable(path, func(err error) { errs = append(errs, err) })
	if err != nil {
		t.Fatal(err)
	}
	r.f.Close() // every write fails from now on
	for range 3 {
		r.Write([]byte("lost\n"))
		r.Flush()
	}
	if len(errs) != 1 {
		t.Errorf("%d failures reported, want 1: %v", len(errs), errs)
	}
}
