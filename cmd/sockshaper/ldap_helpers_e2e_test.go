package main

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/sockshaper/sockshaper/internal/slapdtest"
)

// socksLogin sends a greeting and an RFC 1929 login, and returns the status byte
// of the login's reply (0 success, 1 failure).
func socksLogin(t *testing.T, proxyAddr, user, pass string) byte {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := append([]byte{5, 1, 2, 1, byte(len(user))}, user...)
	msg = append(append(msg, byte(len(pass))), pass...)
	c.Write(msg)
	reply := make([]byte, 4)
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatalf("login %s: reply %x, %v", user, reply, err)
	}
	return reply[3]
}

// ldapDial opens a session as a directory user with their password.
func ldapDial(t *testing.T, proxyAddr, user, target string) (net.Conn, error) {
	d, err := xproxy.SOCKS5("tcp", proxyAddr, &xproxy.Auth{User: user, Password: slapdtest.Password(user)}, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial("tcp", target)
	if err == nil {
		c.SetDeadline(time.Now().Add(20 * time.Second))
	}
	return c, err
}

// checkNoSecrets fails if any secret is in the daemon's log or /metrics.
func checkNoSecrets(t *testing.T, d *process, secrets ...string) {
	t.Helper()
	text := d.logText() + httpGet(t, "http://"+d.admin+"/metrics")
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("secret %q appears in the log or metrics", s)
		}
	}
}

// waitRecords waits up to 5 s for n log records with message msg (the log is
// read from the daemon's standard error as it comes) and returns how many there are.
func waitRecords(d *process, msg string, n int) int {
	for deadline := time.Now().Add(5 * time.Second); len(d.records(msg)) < n && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	return len(d.records(msg))
}
