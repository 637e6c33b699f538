package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/sockshaper/sockshaper/internal/testca"
)

// A front as a client meets it: how it opens a tunnel to a target as a user,
// and the label its sessions carry.
type frontClient struct {
	label string
	dial  func(t *testing.T, user, target string) io.ReadWriteCloser
}

// frontsOf returns every front of a daemon with an HTTPS listener at tlsAddr
// whose certificate ca issued for proxy.test.
func frontsOf(d *process, tlsAddr string, ca *testca.CA) []frontClient {
	tcfg := &tls.Config{RootCAs: ca.Pool, ServerName: "proxy.test"}
	httpConnect := func(t *testing.T, c net.Conn, user, target string) io.ReadWriteCloser {
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", target, target, basicAuth(user, password))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("CONNECT as %s: %v, %v", user, resp, err)
		}
		return &bufferedConn{Conn: c, r: br}
	}
	return []frontClient{
		{"socks5", func(t *testing.T, user, target string) io.ReadWriteCloser {
			return dialThrough(t, d.listen, user, target)
		}},
		{"http", func(t *testing.T, user, target string) io.ReadWriteCloser {
			c, err := net.Dial("tcp", d.listen)
			if err != nil {
				t.Fatal(err)
			}
			return httpConnect(t, c, user, target)
		}},
		{"https", func(t *testing.T, user, target string) io.ReadWriteCloser {
			c, err := tls.Dial("tcp", tlsAddr, withALPN(tcfg, "http/1.1"))
			if err != nil {
				t.Fatal(err)
			}
			return httpConnect(t, c, user, target)
		}},
		{"socks5_tls", func(t *testing.T, user, target string) io.ReadWriteCloser {
			s, err := xproxy.SOCKS5("tcp", tlsAddr, &xproxy.Auth{User: user, Password: password}, tlsForward{cfg: withALPN(tcfg, "")})
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.Dial("tcp", target)
			if err != nil {
				t.Fatalf("SOCKS5 inside TLS as %s: %v", user, err)
			}
			return c
		}},
		{"http2", func(t *testing.T, user, target string) io.ReadWriteCloser {
			p := dialH2(t, tlsAddr, tcfg, user)
			resp, up, err := p.tunnel(target)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("HTTP/2 CONNECT as %s: %v, %v", user, resp, err)
			}
			return h2Tunnel{resp.Body, up}
		}},
	}
}

func withALPN(c *tls.Config, proto string) *tls.Config {
	c = c.Clone()
	c.NextProtos = nil
	if proto != "" {
		c.NextProtos = []string{proto}
	}
	return c
}

// h2Tunnel is an HTTP/2 CONNECT stream as one stream of bytes.
type h2Tunnel struct {
	io.ReadCloser
	up io.WriteCloser
}

func (h h2Tunnel) Write(p []byte) (int, error) { return h.up.Write(p) }
func (h h2Tunnel) Close() error                { h.up.Close(); return h.ReadCloser.Close() }

// frontsDaemon starts a daemon with every front and five users (one per front:
// u0..u4), with extra in its config.
func frontsDaemon(t *testing.T, extra string) (*process, []frontClient, string) {
	t.Helper()
	ca := testca.New(t, "ca")
	dir := t.TempDir()
	ca.Server(t, 24*time.Hour, "proxy.test", "127.0.0.1").Write(t, dir, "proxy")
	config := strings.Replace(baseConfig, "handshake: 1s", "handshake: 5s", 1)
	d := startDaemonAt(t, dir, nil, config+"tls: {listen: 127.0.0.1:0, cert_file: proxy.pem, key_file: proxy.key}\n"+extra,
		users("u0", "u1", "u2", "u3", "u4"))
	addr, _ := d.records("serving")[0]["tls_listen"].(string)
	return d, frontsOf(d, addr, ca), dir
}

// readUntilEnd reads r until it ends, for at most within, and returns the
// bytes read and how it ended.
func readUntilEnd(r io.Reader, within time.Duration) (int64, error) {
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() { n, err := io.Copy(io.Discard, r); done <- result{n, err} }()
	select {
	case res := <-done:
		return res.n, res.err
	case <-time.After(within):
		return -1, errors.New("still open")
	}
}

// cutAsError reports whether a tunnel ended as a cut must: with an error, not
// a clean end of stream.
func cutAsError(err error) bool {
	return err != nil && !errors.Is(err, io.EOF) && err.Error() != "still open"
}

// TestFrontsKeepEveryFeature is the front × feature table: no front loses
// shaping, accounting, revocation, quotas or the drain, and each cut reaches
// its client as an error. Each feature runs on a daemon of its own, with one
// user per front so that their buckets and allowances are their own.
func TestFrontsKeepEveryFeature(t *testing.T) {
	t.Run("shaping and accounting", func(t *testing.T) {
		const rate = 256 << 10
		d, fronts, _ := frontsDaemon(t, "shaping:\n  default_group: students\n  groups:\n    students: {upload: 0, download: 256KiB}\n")
		source := sourceServer(t)
		var conns []io.ReadWriteCloser
		var counters []*counter
		for i, f := range fronts {
			c := f.dial(t, fmt.Sprintf("u%d", i), source)
			conns = append(conns, c)
			counters = append(counters, countBytes(c))
		}
		time.Sleep(2 * time.Second) // the burst spent, the buffers on the way full
		before := make([]int64, len(fronts))
		for i, c := range counters {
			before[i] = c.n.Load()
		}
		const window = 4 * time.Second
		time.Sleep(window)
		for i, f := range fronts {
			if r := float64(counters[i].n.Load()-before[i]) / window.Seconds(); r < 0.75*rate || r > 1.25*rate {
				t.Errorf("%s: %.0f B/s, want the user's %d ±25%%", f.label, r, rate)
			}
			conns[i].Close()
		}
		waitForRecordCount(t, d, "session", len(fronts))
		for i, f := range fronts {
			var line map[string]any
			for _, rec := range d.records("session") {
				if rec["user"] == fmt.Sprintf("u%d", i) {
					line = rec
				}
			}
			got := float64(counters[i].n.Load())
			if line == nil || line["front"] != f.label || line["command"] != "connect" || line["bytes_down"].(float64) < got {
				t.Errorf("%s: accounting line %v, want front %s and at least the %.0f bytes the client got", f.label, line, f.label, got)
			}
		}
	})
	t.Run("revocation", func(t *testing.T) {
		d, fronts, dir := frontsDaemon(t, "")
		echo := echoServer(t)
		var conns []io.ReadWriteCloser
		for i, f := range fronts {
			c := f.dial(t, fmt.Sprintf("u%d", i), echo)
			defer c.Close()
			conns = append(conns, c)
		}
		writeFile(t, filepath.Join(dir, "users.htpasswd"), users("nobody"))
		d.signal(syscall.SIGHUP)
		for i, c := range conns {
			if _, err := readUntilEnd(c, 10*time.Second); !cutAsError(err) {
				t.Errorf("%s: a revoked user's tunnel ended with %v, want an error", fronts[i].label, err)
			}
		}
		d.waitMetric(`sockshaper_sessions_reset_total{reason="revoked"}`, float64(len(fronts)))
	})
	t.Run("quota", func(t *testing.T) {
		d, fronts, _ := frontsDaemon(t, "state_dir: state\nshaping:\n  default_group: students\n  groups:\n    students: {download: 0, quota: {daily: 1MiB, over_rate: 0}}\n")
		source := sourceServer(t)
		for i, f := range fronts {
			c := f.dial(t, fmt.Sprintf("u%d", i), source)
			n, err := readUntilEnd(c, 20*time.Second)
			c.Close()
			// A reset drops what was on its way: the client gets at most the
			// allowance, and the accounting line says what was sent.
			if !cutAsError(err) || n > 1<<20+(1<<20)/50 {
				t.Errorf("%s: %d bytes over a refusing 1 MiB allowance, ended with %v; want it cut at 1 MiB (+2%%) with an error", f.label, n, err)
			}
		}
		d.waitMetric(`sockshaper_sessions_reset_total{reason="quota"}`, float64(len(fronts)))
		for _, rec := range d.records("session") {
			if rec["close_reason"] != "quota" {
				continue
			}
			if down := rec["bytes_down"].(float64); down < 1<<20 || down > 1<<20+(1<<20)/50 {
				t.Errorf("%s: %v bytes sent over a refusing 1 MiB allowance, want 1 MiB (+2%%)", rec["front"], down)
			}
		}
	})
	t.Run("drain", func(t *testing.T) {
		d, fronts, _ := frontsDaemon(t, "")
		source := sourceServer(t)
		var conns []io.ReadWriteCloser
		for i, f := range fronts {
			conns = append(conns, f.dial(t, fmt.Sprintf("u%d", i), source))
		}
		d.signal(syscall.SIGTERM)
		for i, c := range conns {
			if _, err := readUntilEnd(c, 15*time.Second); !cutAsError(err) {
				t.Errorf("%s: a download cut by the drain ended with %v, want an error", fronts[i].label, err)
			}
			c.Close()
		}
		d.waitExit(10 * time.Second)
		var shutdown int
		for _, rec := range d.records("session") {
			if rec["close_reason"] == "shutdown" {
				shutdown++
			}
		}
		if shutdown != len(fronts) {
			t.Errorf("%d accounting lines closed by the drain, want %d (one per front)", shutdown, len(fronts))
		}
	})
}

// counter counts what a reader delivers, read without end in the background.
type counter struct{ n atomic.Int64 }

func countBytes(r io.Reader) *counter {
	c := &counter{}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			c.n.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	return c
}
