package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// proxyRequest sends raw on a new connection to the proxy and reads one response.
func proxyRequest(t *testing.T, proxyAddr, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("response to %q: %v", strings.SplitN(raw, "\r\n", 2)[0], err)
	}
	return resp
}

// interimOrigin answers every request with 100 Continue heads without end, as
// fast as the connection takes them, and counts what it wrote.
func interimOrigin(t *testing.T) (addr string, written func() int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	total := make(chan int64, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				var n int64
				for {
					m, err := io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
					n += int64(m)
					if err != nil {
						total <- n
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() int64 {
		select {
		case n := <-total:
			return n
		case <-time.After(10 * time.Second):
			return -1
		}
	}
}

// TestInterimResponsesAreBounded is issue 20's finding 7: an origin streaming
// 100 Continue made one forwarded request cost a full core for 10 s (4.6 million
// heads). After 16 interim responses the proxy answers 502, closes the origin,
// and counts the interim bytes it passed in the session.
func TestInterimResponsesAreBounded(t *testing.T) {
	d := startDaemon(t, baseConfig, usersFile())
	origin, written := interimOrigin(t)
	start := time.Now()
	for _, tc := range []struct {
		minor   string
		interim int // passed on to the client
	}{{"1.1", 16}, {"1.0", 0}} {
		minor := tc.minor
		c, err := net.Dial("tcp", d.listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET http://%s/ HTTP/%s\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n",
			origin, minor, origin, basicAuth("alice", password))
		br := bufio.NewReader(c)
		interim := 0
		resp, err := http.ReadResponse(br, nil)
		for ; err == nil && resp.StatusCode < 200; resp, err = http.ReadResponse(br, nil) {
			interim++
		}
		if err != nil {
			t.Fatalf("HTTP/%s: after %d interim responses: %v", minor, interim, err)
		}
		if interim != tc.interim {
			t.Errorf("HTTP/%s: %d interim responses passed on, want %d", minor, interim, tc.interim)
		}
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("HTTP/%s: %s after endless interim responses, want 502", minor, resp.Status)
		}
		if n := written(); n < 0 || n > 50<<20 {
			t.Errorf("HTTP/%s: the origin wrote %d bytes of interim heads before the proxy gave up", minor, n)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("two requests to an endless-interim origin took %v", took)
	}
	// The proxy writes a session's accounting line after its 502 reached the
	// client: wait for the second one.
	forwarded := func() (out []map[string]any) {
		for _, l := range d.records("session") {
			if l["front"] == "http" && l["command"] == "request" {
				out = append(out, l)
			}
		}
		return out
	}
	lines := forwarded()
	for deadline := time.Now().Add(5 * time.Second); len(lines) < 2 && time.Now().Before(deadline); lines = forwarded() {
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range lines {
		// 16 heads of 25 bytes each, at least, passed the session's buckets.
		if down, _ := l["bytes_down"].(float64); down < 16*25 {
			t.Errorf("accounting line bytes_down = %v, want the interim heads counted: %v", down, l)
		}
	}
	if len(lines) != 2 {
		t.Errorf("%d accounting lines of forwarded requests, want 2", len(lines))
	}
}

// TestConnectPortsRestrictForwardedRequests: http.connect_ports applies to
// forwarded requests as it does to CONNECT (a POST to a port outside it got 200
// while CONNECT got 403); http://host/ is port 80.
func TestConnectPortsRestrictForwardedRequests(t *testing.T) {
	target := helloServer(t)
	host := strings.TrimPrefix(target.URL, "http://")
	_, port, _ := net.SplitHostPort(host)
	auth := "Proxy-Authorization: Basic " + basicAuth("alice", password) + "\r\n"
	for _, tc := range []struct {
		ports  string
		status int
	}{
		{"[443]", http.StatusForbidden},
		{"[80]", http.StatusForbidden},
		{"[80, " + port + "]", http.StatusOK},
	} {
		d := startDaemon(t, baseConfig+"http: {connect_ports: "+tc.ports+"}\n", usersFile())
		for _, req := range []string{
			"POST " + target.URL + "/x HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 2\r\n" + auth + "\r\nhi",
			"GET " + target.URL + "/x HTTP/1.1\r\nHost: " + host + "\r\n" + auth + "\r\n",
		} {
			resp := proxyRequest(t, d.listen, req)
			if resp.StatusCode != tc.status {
				t.Errorf("connect_ports %s: %s → %s, want %d", tc.ports, strings.SplitN(req, " ", 2)[0], resp.Status, tc.status)
			}
		}
		connect := proxyRequest(t, d.listen, "CONNECT "+host+" HTTP/1.1\r\nHost: "+host+"\r\n"+auth+"\r\n")
		if want := tc.status; connect.StatusCode != want {
			t.Errorf("connect_ports %s: CONNECT → %s, want %d", tc.ports, connect.Status, want)
		}
	}
}

// TestPACNamesTheConfiguredProxy: the PAC file echoed any Host and was
// cacheable for 300 s without Vary: Host. With http.pac.proxy_host naming a
// port, every client gets the configured name whatever Host it sends; without
// one, the answer varies by Host and says so.
func TestPACNamesTheConfiguredProxy(t *testing.T) {
	pac := func(d *process, host string) *http.Response {
		return proxyRequest(t, d.listen, "GET /proxy.pac HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	}
	body := func(resp *http.Response) string {
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	named := startDaemon(t, baseConfig+"http: {pac: {proxy_host: \"proxy.campus.example:3128\"}}\n", usersFile())
	for _, host := range []string{"attacker.example:666", "proxy.campus.example:3128", ""} {
		resp := pac(named, host)
		if b := body(resp); !strings.Contains(b, `"PROXY proxy.campus.example:3128"`) || strings.Contains(b, "attacker") {
			t.Errorf("proxy_host with a port, Host %q: PAC says %q", host, b)
		}
		if v := resp.Header.Get("Vary"); v != "" {
			t.Errorf("proxy_host with a port, Host %q: Vary %q on a file that does not vary", host, v)
		}
	}
	echoing := startDaemon(t, baseConfig, usersFile())
	resp := pac(echoing, "wpad.campus.example:8080")
	if b := body(resp); !strings.Contains(b, `"PROXY wpad.campus.example:8080"`) {
		t.Errorf("no proxy_host: PAC says %q", b)
	}
	if v := resp.Header.Get("Vary"); v != "Host" {
		t.Errorf("no proxy_host: Vary %q, want Host", v)
	}
}
