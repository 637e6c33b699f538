package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// webServer is a local origin for the HTTP front's tests: /page (an HTML page),
// /echo (the request body back, chunked), /hello. It counts the connections it
// accepted.
type webServer struct {
	*httptest.Server
	conns atomic.Int32
}

func startWebServer(t *testing.T, tlsOn bool) *webServer {
	w := &webServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(rw, "<!doctype html><title>campus</title><p id=msg>served to %s via %s</p>", r.URL.Path, r.Header.Get("Via"))
	})
	mux.HandleFunc("/echo", func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rw.Header().Set("X-Request-Encoding", strings.Join(r.TransferEncoding, ","))
		rw.Write(body[:len(body)/2])
		rw.(http.Flusher).Flush() // the rest of unknown length: chunked
		rw.Write(body[len(body)/2:])
	})
	mux.HandleFunc("/hello/", func(rw http.ResponseWriter, r *http.Request) { fmt.Fprintf(rw, "hello from %s", r.URL.Path) })
	w.Server = httptest.NewUnstartedServer(mux)
	w.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			w.conns.Add(1)
		}
	}
	if tlsOn {
		w.StartTLS()
	} else {
		w.Start()
	}
	t.Cleanup(w.Close)
	return w
}

// curlArgs runs curl with args and returns its output and exit code.
func curlArgs(t *testing.T, args ...string) (string, int) {
	t.Helper()
	bin := requireTool(t, "curl", "curl")
	cmd := exec.Command(bin, append([]string{"-sS", "--max-time", "10"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// httpProxyURL is the HTTP front's URL with user's credentials ("" for none).
func httpProxyURL(addr, user, pass string) string {
	u := url.URL{Scheme: "http", Host: addr}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}

func TestCurlThroughHTTPFront(t *testing.T) {
	d := startDaemon(t, baseConfig, usersFile())
	web := startWebServer(t, false)
	good := httpProxyURL(d.listen, "alice", password)
	out, code := curlArgs(t, "-x", good, web.URL+"/hello/")
	if code != 0 || out != "hello from /hello/" {
		t.Fatalf("forwarded GET: exit %d, %q", code, out)
	}
	out, code = curlArgs(t, "-p", "-x", good, web.URL+"/hello/")
	if code != 0 || out != "hello from /hello/" {
		t.Fatalf("GET through CONNECT (-p): exit %d, %q", code, out)
	}
	status := func(args ...string) string {
		out, _ := curlArgs(t, append([]string{"-o", "/dev/null", "-w", "%{http_code}"}, args...)...)
		return out
	}
	if s := status("-x", httpProxyURL(d.listen, "alice", "wrong"), web.URL+"/hello/"); s != "407" {
		t.Errorf("wrong password: %s, want 407", s)
	}
	if s := status("-x", "http://"+d.listen, web.URL+"/hello/"); s != "407" {
		t.Errorf("no credentials: %s, want 407", s)
	}
	if s := status("-x", good, strings.Replace(web.URL, "127.0.0.1", "127.0.0.2", 1)+"/hello/"); s != "403" {
		t.Errorf("denied destination: %s, want 403", s)
	}
	if s, _ := curlArgs(t, "-o", "/dev/null", "-w", "%{http_connect}", "-p", "-x", good,
		strings.Replace(web.URL, "127.0.0.1", "127.0.0.2", 1)+"/hello/"); !strings.HasSuffix(s, "403") {
		t.Errorf("denied CONNECT: %s, want 403", s)
	}
	d.waitMetric(`sockshaper_sessions_total{app="other",command="request",front="http",result="ok"}`, 1)
	d.waitMetric(`sockshaper_sessions_total{app="other",command="connect",front="http",result="ok"}`, 1)
	d.waitMetric(`sockshaper_sessions_total{app="other",command="request",front="http",result="destination_denied"}`, 1)
	d.waitMetric(`sockshaper_sessions_total{app="other",command="request",front="http",result="auth_failed"}`, 1)
	d.waitMetric(`sockshaper_sessions_total{app="other",command="request",front="http",result="auth_required"}`, 1)
	d.waitMetric(`sockshaper_auth_attempts_total{result="failed"}`, 1)
	line := d.records("session")[0]
	if line["front"] != "http" || line["user"] != "alice" || line["command"] != "request" || line["result"] != "ok" {
		t.Errorf("accounting line %v, want front=http user=alice command=request result=ok", line)
	}
	for _, rec := range d.records("session") {
		if strings.Contains(fmt.Sprint(rec), password) || strings.Contains(fmt.Sprint(rec), "wrong") {
			t.Errorf("a password appears in the accounting line %v", rec)
		}
	}
}

// TestCurlKeepAliveAndBodies: one curl, several requests on one connection
// (one accounting line each, all from one client port, one origin connection),
// a chunked upload and a chunked download, a body of known length.
func TestCurlKeepAliveAndBodies(t *testing.T) {
	d := startDaemon(t, baseConfig, usersFile())
	web := startWebServer(t, false)
	good := httpProxyURL(d.listen, "alice", password)
	const n = 5
	var urls []string
	for i := range n {
		urls = append(urls, fmt.Sprintf("%s/hello/%d", web.URL, i))
	}
	out, code := curlArgs(t, append([]string{"-x", good, "-w", "[%{num_connects}]"}, urls...)...)
	if code != 0 || strings.Count(out, "hello from") != n {
		t.Fatalf("curl of %d URLs: exit %d, %q", n, code, out)
	}
	if c := strings.Count(out, "[1]"); c != 1 {
		t.Errorf("curl opened %d connections for %d requests, want 1: %s", c, n, out)
	}
	d.waitMetric(`sockshaper_sessions_total{app="other",command="request",front="http",result="ok"}`, n)
	clients := map[any]int{}
	for _, rec := range d.records("session") {
		clients[rec["client"]]++
	}
	if len(clients) != 1 {
		t.Errorf("the %d requests came from client addresses %v, want one connection", n, clients)
	}
	if c := web.conns.Load(); c != 1 {
		t.Errorf("the origin saw %d connections, want 1 (reused)", c)
	}
	body := filepath.Join(t.TempDir(), "body")
	writeFile(t, body, strings.Repeat("campus ", 100_000))
	for _, extra := range [][]string{{"-H", "Transfer-Encoding: chunked"}, nil} {
		args := append([]string{"-x", good, "--data-binary", "@" + body, "-D", "-"}, extra...)
		out, code := curlArgs(t, append(args, web.URL+"/echo")...)
		head, got, _ := strings.Cut(out, "\r\n\r\n")
		if code != 0 || got != strings.Repeat("campus ", 100_000) {
			t.Fatalf("upload %v: exit %d, %d bytes back\n%s", extra, code, len(got), head)
		}
		if !strings.Contains(head, "Transfer-Encoding: chunked") {
			t.Errorf("upload %v: response not chunked:\n%s", extra, head)
		}
		if chunked := strings.Contains(head, "X-Request-Encoding: chunked"); chunked != (extra != nil) {
			t.Errorf("upload %v: the origin saw the body chunked: %v\n%s", extra, chunked, head)
		}
	}
}

// TestPythonAndGoClientsThroughHTTPFront: Python's urllib answering the 407
// challenge with ProxyBasicAuthHandler, and Go's net/http with credentials in
// the proxy URL, for a plain and a TLS origin (CONNECT).
func TestPythonAndGoClientsThroughHTTPFront(t *testing.T) {
	python := requireTool(t, "python3", "python3")
	d := startDaemon(t, baseConfig, usersFile())
	web := startWebServer(t, false)
	script := `
import sys, urllib.request
proxy, url, password = sys.argv[1:]
auth = urllib.request.ProxyBasicAuthHandler()
auth.add_password("sockshaper", proxy, "alice", password)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}), auth)
print(opener.open(url, timeout=10).read().decode(), end="")
`
	cmd := exec.Command(python, "-c", script, "http://"+d.listen, web.URL+"/hello/python", password)
	cmd.Env = append(os.Environ(), "no_proxy=", "NO_PROXY=")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "hello from /hello/python" {
		t.Fatalf("python urllib: %v, %q", err, out)
	}
	d.waitMetric(`sockshaper_sessions_total{app="other",command="request",front="http",result="auth_required"}`, 1)

	secure := startWebServer(t, true)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: d.listen, User: url.UserPassword("alice", password)}),
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	for _, u := range []string{web.URL + "/hello/go", secure.URL + "/hello/go-tls"} {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("Go client GET %s: %v", u, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "hello from /hello/go") {
			t.Errorf("Go client GET %s: %d %q", u, resp.StatusCode, b)
		}
	}
	client.CloseIdleConnections()
	d.waitMetric(`sockshaper_sessions_total{app="other",command="request",front="http",result="ok"}`, 2)
	d.waitMetric(`sockshaper_sessions_total{app="other",command="connect",front="http",result="ok"}`, 1)
	d.waitMetric(`sockshaper_auth_attempts_total{result="ok"}`, 3)
}

// TestHTTPListenServesHTTPOnly: http.listen serves HTTP proxy clients and
// refuses SOCKS5 ones; the listen address serves both.
func TestHTTPListenServesHTTPOnly(t *testing.T) {
	d := startDaemon(t, baseConfig+"http: {listen: 127.0.0.1:0}\n", usersFile())
	rec := d.records("serving")[0]
	httpAddr, _ := rec["http_listen"].(string)
	if httpAddr == "" {
		t.Fatalf("serving line without http_listen: %v", rec)
	}
	web := startWebServer(t, false)
	if out, code := curlArgs(t, "-x", httpProxyURL(httpAddr, "alice", password), web.URL+"/hello/"); code != 0 || out != "hello from /hello/" {
		t.Errorf("GET through http.listen: exit %d, %q", code, out)
	}
	if _, err := socksDialer(t, httpAddr, "alice").Dial("tcp", echoServer(t)); err == nil {
		t.Error("SOCKS5 through http.listen succeeded")
	}
	c := dialThrough(t, d.listen, "alice", echoServer(t))
	roundTrip(t, c, "socks on the shared port")
	c.Close()
}
