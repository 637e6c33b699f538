package main

import (
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRemovedUserLosesSessions removes alice from the users file while she has a
// download and a UDP association running: the reload cuts both (the client sees
// a reset), logs and counts them, and leaves bob's session alone. Before, a
// removed user's sessions went on until they ended by themselves.
func TestRemovedUserLosesSessions(t *testing.T) {
	d := startDaemon(t, baseConfig, users("alice", "bob"))
	download := dialThrough(t, d.listen, "alice", sourceServer(t))
	defer download.Close()
	_, ctl := udpAssociateRaw(t, d.listen)
	bob := dialThrough(t, d.listen, "bob", echoServer(t))
	defer bob.Close()
	if _, err := io.CopyN(io.Discard, download, 1<<20); err != nil {
		t.Fatal(err)
	}

	writeFile(t, filepath.Join(d.dir, "users.htpasswd"), users("bob"))
	d.signal(syscall.SIGHUP)
	d.waitMetric(`sockshaper_config_reloads_total{result="success"}`, 1)

	for name, c := range map[string]net.Conn{"download": download, "udp control": ctl} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, c); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("alice's %s after her removal: read error %v, want a reset", name, err)
		}
	}
	d.waitMetric(`sockshaper_sessions_reset_total{reason="revoked"}`, 2)
	revoked := 0
	for _, rec := range d.records("session") {
		if rec["close_reason"] == "revoked" && rec["user"] == "alice" {
			revoked++
		}
	}
	if revoked != 2 {
		t.Errorf("accounting lines of alice with close_reason revoked: %d, want 2", revoked)
	}
	if recs := d.records("reloaded"); len(recs) != 1 || recs[0]["sessions_revoked"] != float64(2) {
		t.Errorf("reload line: %v, want sessions_revoked 2", recs)
	}
	roundTrip(t, bob, "bob stays")
	if _, err := socksDialer(t, d.listen, "alice").Dial("tcp", echoServer(t)); err == nil {
		t.Error("alice can still log in after her removal")
	}
}

// TestReloadInitialisesNewAppSeries: an app class added by a reload gets its
// zero series at once, as the classes known at start do.
func TestReloadInitialisesNewAppSeries(t *testing.T) {
	d := startDaemon(t, baseConfig, usersFile())
	series := `sockshaper_sessions_total{app="games",command="connect",front="socks5",result="ok"}`
	if got := httpGet(t, "http://"+d.admin+"/metrics"); containsLine(got, series) {
		t.Fatalf("%s exported before the class exists", series)
	}
	writeFile(t, filepath.Join(d.dir, "sockshaper.yaml"), baseConfig+`
apps:
  games: {any_address_ports: ["udp/27015"]}
`)
	d.signal(syscall.SIGHUP)
	d.waitMetric(`sockshaper_config_reloads_total{result="success"}`, 1)
	if got := httpGet(t, "http://"+d.admin+"/metrics"); !containsLine(got, series+" 0") {
		t.Errorf("%s not exported as 0 after the reload added the class", series)
	}
}

// containsLine reports whether the exposition text has a line starting with prefix.
func containsLine(text, prefix string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// TestDualStackListenLogsIPv4Clients: on a wildcard listen address (one
// dual-stack socket), an IPv4 client is logged as its IPv4 address, not in the
// IPv6-mapped form the kernel hands over.
func TestDualStackListenLogsIPv4Clients(t *testing.T) {
	d := startDaemon(t, strings.Replace(baseConfig, "listen: 127.0.0.1:0", "listen: 0.0.0.0:0", 1), usersFile())
	_, port, _ := net.SplitHostPort(d.listen)
	c := dialThrough(t, "127.0.0.1:"+port, "alice", echoServer(t))
	roundTrip(t, c, "hello")
	c.Close()
	waitForRecord(t, d, "session")
	for _, rec := range d.records("session") {
		if client, _ := rec["client"].(string); !strings.HasPrefix(client, "127.0.0.1:") {
			t.Errorf("accounting line client %q, want 127.0.0.1:PORT", client)
		}
	}
}

// waitForRecord waits up to 5 s for a log record with message msg.
func waitForRecord(t *testing.T, d *process, msg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(d.records(msg)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no %q record", msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
