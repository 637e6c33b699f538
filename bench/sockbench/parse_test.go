package main

import (
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseUsers(t *testing.T) {
	got, err := parseUsers("alice, bob:pw2,carol:", "default")
	if err != nil {
		t.Fatal(err)
	}
	want := []credential{{"alice", "default"}, {"bob", "pw2"}, {"carol", ""}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := parseUsers(" ", "x"); got != nil || err != nil {
		t.Errorf("empty list: got %v, %v; want nil, nil", got, err)
	}
	for _, bad := range []string{"alice,alice", "alice,,bob", ":pw", strings.Repeat("u", 256)} {
		if _, err := parseUsers(bad, "x"); err == nil {
			t.Errorf("parseUsers(%.20q) succeeded, want an error", bad)
		}
	}
}

func TestParsePerConn(t *testing.T) {
	users := []credential{{"alice", "a"}, {"bob", "b"}}
	got, err := parsePerConn("alice=3, bob=1", users)
	if err != nil {
		t.Fatal(err)
	}
	want := []credential{users[0], users[0], users[0], users[1]}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"alice", "carol=1", "alice=0", "alice=x", "alice=30001"} {
		if _, err := parsePerConn(bad, users); err == nil {
			t.Errorf("parsePerConn(%q) succeeded, want an error", bad)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	users := []credential{{"a", ""}, {"b", ""}}
	got := roundRobin(users, 5)
	want := []credential{users[0], users[1], users[0], users[1], users[0]}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := roundRobin(nil, 2); !slices.Equal(got, []credential{{}, {}}) {
		t.Errorf("no users: got %v, want two no-auth credentials", got)
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions("download", []string{"-users", "alice,bob", "-password", "pw",
		"-user-per-conn", "alice=2,bob=1", "-duration", "2s", "-client-rate", "8Mbit"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.conns != 3 || o.duration != 2*time.Second || o.clientBps != 1_000_000 || o.perConn[2].user != "bob" {
		t.Errorf("got conns %d duration %v client rate %d per-conn %v", o.conns, o.duration, o.clientBps, o.perConn)
	}
	src, err := parseOptions("download", []string{"-source-rate", "50MiB"}, io.Discard)
	if err != nil || src.sourceBps != 50<<20 {
		t.Errorf("-source-rate 50MiB: %d, %v; want %d", src.sourceBps, err, 50<<20)
	}
	churn, err := parseOptions("churn", nil, io.Discard)
	if err != nil || churn.conns != 16 || churn.duration != 5*time.Second {
		t.Errorf("churn defaults: %+v, %v; want 16 clients for 5s", churn, err)
	}
	bad := []struct {
		name string
		args []string
	}{
		{"download", []string{"-conns", "0"}},
		{"download", []string{"-source-rate", "fast"}},
		{"latency", []string{"-duration", "11m"}},
		{"upload", []string{"-client-rate", "8Mbps"}},
		{"upload", []string{"-source-rate", "8MiB"}}, // the sink cannot be paced
		{"idle", []string{"-sessions", "40000"}},
		{"rate-change", []string{"-pid", "1", "-config", "a", "-new-config", "b"}},
		{"churn", []string{"extra"}},
	}
	for _, tc := range bad {
		name, args := tc.name, tc.args
		if _, err := parseOptions(name, args, io.Discard); err == nil {
			t.Errorf("%s %v: succeeded, want an error", name, args)
		}
	}
}

func TestParseStat(t *testing.T) {
	line := "4242 (my (odd) proc) S 17 4242 4242 0 -1 4194560 100 0 0 0 " +
		"250 50 7 3 20 0 9 0 123456 1000000 500 18446744073709551615\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 17 || st.cpuTicks != 310 {
		t.Errorf("got ppid %d ticks %d, want 17 and 310", st.ppid, st.cpuTicks)
	}
	for _, bad := range []string{"no paren", "1 (x) S 1 2 3"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded, want an error", bad)
		}
	}
}

func TestParseKiB(t *testing.T) {
	if v, err := parseKiB("\t  18824 kB"); err != nil || v != 18824 {
		t.Errorf("got %d, %v; want 18824", v, err)
	}
	for _, bad := range []string{"", "12", "12 MB", "x kB"} {
		if _, err := parseKiB(bad); err == nil {
			t.Errorf("parseKiB(%q) succeeded, want an error", bad)
		}
	}
}

func TestTreeOfSelf(t *testing.T) {
	cpu, err := treeCPUSeconds(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("treeCPUSeconds(self) = %v, %v; want more than 0", cpu, err)
	}
	m, err := treeMemory(os.Getpid())
	if err != nil || m.Processes < 1 || m.RSSKiB <= 0 {
		t.Errorf("treeMemory(self) = %+v, %v", m, err)
	}
	if _, err := treeMemory(1 << 30); err == nil {
		t.Error("treeMemory of a missing process succeeded, want an error")
	}
}
