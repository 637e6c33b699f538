package main

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHTTP2RevocationResetsOnlyThatUsersStreams: streams of two users share one
// HTTP/2 connection; a reload that removes one user resets that user's streams
// (RST_STREAM: the client sees an error, not the end of a response) and leaves
// the other's, and the connection, running.
func TestHTTP2RevocationResetsOnlyThatUsersStreams(t *testing.T) {
	d, addr, ca, dir := httpsDaemon(t, "")
	writeFile(t, filepath.Join(dir, "users.htpasswd"), users("alice", "bob"))
	d.signal(syscall.SIGHUP)
	waitForRecordCount(t, d, "reloaded", 1)
	echo := echoServer(t)
	p := dialH2(t, addr, &tls.Config{RootCAs: ca.Pool, ServerName: "proxy.test"}, "alice")
	aliceResp, aliceUp, err := p.tunnel(echo)
	if err != nil || aliceResp.StatusCode != 200 {
		t.Fatalf("alice's tunnel: %v %v", aliceResp, err)
	}
	p.auth = "Basic " + basicAuth("bob", password) // bob's credentials on the same connection
	bobResp, bobUp, err := p.tunnel(echo)
	if err != nil || bobResp.StatusCode != 200 {
		t.Fatalf("bob's tunnel: %v %v", bobResp, err)
	}
	echoOnce(t, aliceResp, aliceUp, "alice before")
	echoOnce(t, bobResp, bobUp, "bob before")

	writeFile(t, filepath.Join(dir, "users.htpasswd"), users("bob"))
	d.signal(syscall.SIGHUP)
	waitForRecordCount(t, d, "reloaded", 2)
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, aliceResp.Body); done <- err }()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, io.EOF) {
			t.Errorf("alice's revoked stream ended cleanly (%v), want a reset", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("alice's stream still open 10 s after her removal")
	}
	echoOnce(t, bobResp, bobUp, "bob after")
	if got := d.metric(`sockshaper_sessions_reset_total{reason="revoked"}`); got != 1 {
		t.Errorf("sessions reset as revoked: %v, want 1 (alice's stream only)", got)
	}
}

// waitForRecordCount waits until the daemon logged msg n times.
func waitForRecordCount(t *testing.T, d *process, msg string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(d.records(msg)) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%q logged %d times, want %d", msg, len(d.records(msg)), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHTTP2DrainSendsGoAwayThenResets: at SIGTERM an HTTP/2 connection gets
// GOAWAY (the client opens no new stream on it) while its tunnels go on; at
// the drain's deadline they are reset, so the client sees an error and never
// takes a cut download for a whole one.
func TestHTTP2DrainSendsGoAwayThenResets(t *testing.T) {
	d, addr, ca, _ := httpsDaemon(t, "")
	echo, source := echoServer(t), sourceServer(t)
	p := dialH2(t, addr, &tls.Config{RootCAs: ca.Pool, ServerName: "proxy.test"}, "alice")
	resp, up, err := p.tunnel(echo)
	if err != nil {
		t.Fatal(err)
	}
	down, downUp, err := p.tunnel(source)
	if err != nil {
		t.Fatal(err)
	}
	defer downUp.Close()
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, down.Body); done <- err }()
	d.signal(syscall.SIGTERM)
	// GOAWAY reaches the client: no new stream.
	deadline := time.Now().Add(5 * time.Second)
	for p.cc.CanTakeNewRequest() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p.cc.CanTakeNewRequest() {
		t.Error("the client may still open streams after the drain began (no GOAWAY)")
	}
	echoOnce(t, resp, up, "during the drain") // the tunnel still works
	select {
	case err := <-done:
		if err == nil || errors.Is(err, io.EOF) {
			t.Errorf("a download cut by the drain ended cleanly (%v), want a reset", err)
		}
	case <-time.After(15 * time.Second): // timeouts.drain is 2 s
		t.Fatal("the download outlived the drain's deadline by 13 s")
	}
	if code := d.waitExit(10 * time.Second); code != 0 {
		t.Errorf("exit %d after the drain", code)
	}
	if !strings.Contains(d.logText(), "drain timeout") {
		t.Error("the drain did not time out, though a download ran")
	}
	_ = http.StatusOK
}
