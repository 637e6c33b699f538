// Package haproxytest starts a real HAProxy (Debian's haproxy) for tests: one TCP
// frontend on a free loopback port balancing over the given backends with the
// PROXY protocol version 2, from a source address of the test's choosing, so
// that the balancer's address differs from its clients'. It is stopped by PID.
package haproxytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/proctest"
)

// Proxy is one haproxy process.
type Proxy struct {
	// Addr is the frontend's host:port.
	Addr string
	cmd  *exec.Cmd
}

// Backend is one server behind the balancer.
type Backend struct {
	Name string
	Addr string // host:port of its proxy listener
}

// Start runs haproxy with a frontend on 127.0.0.1 balancing connections (least
// connections first) over backends with send-proxy-v2, connecting from source.
// In CI (CI set) a missing haproxy fails the test; elsewhere it skips.
func Start(t testing.TB, source string, backends ...Backend) *Proxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("haproxy not found: install the Debian package haproxy (scripts/test.sh does)")
		}
		t.Skip("haproxy not found: apt-get install haproxy")
	}
	port := freePort(t)
	var servers strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&servers, "  server %s %s send-proxy-v2 source %s\n", b.Name, b.Addr, source)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	err = os.WriteFile(cfg, []byte(fmt.Sprintf(`global
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 1m
  timeout server 1m
frontend socks
  bind 127.0.0.1:%d
  default_backend shapers
backend shapers
  balance leastconn
%s`, port, servers.String())), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	p.cmd = exec.Command(bin, "-db", "-f", cfg)
	p.cmd.Stdout, p.cmd.Stderr = os.Stderr, os.Stderr
	proctest.DieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not listen on %s: %v", p.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
