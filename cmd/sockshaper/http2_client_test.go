package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// h2Proxy is one HTTP/2 connection to the HTTPS proxy, as a browser holds one:
// every tunnel and request goes on a stream of it.
type h2Proxy struct {
	t    *testing.T
	cc   *http2.ClientConn
	auth string // the Proxy-Authorization of its requests; "" for none
}

// dialH2 opens an HTTP/2 connection to the HTTPS proxy at addr, trusting pool's
// CA for proxy.test; user "" sends no credentials.
func dialH2(t *testing.T, addr string, cfg *tls.Config, user string) *h2Proxy {
	t.Helper()
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS to the proxy: %v", err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q, want h2", p)
	}
	cc, err := (&http2.Transport{}).NewClientConn(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	p := &h2Proxy{t: t, cc: cc}
	if user != "" {
		p.auth = "Basic " + basicAuth(user, password)
	}
	return p
}

// tunnel opens a CONNECT stream to target and returns the response (whose Body
// is the download) and the writer of the upload.
func (p *h2Proxy) tunnel(target string) (*http.Response, *io.PipeWriter, error) {
	pr, pw := io.Pipe()
	req := &http.Request{Method: http.MethodConnect, Host: target, URL: &url.URL{Host: target},
		Header: http.Header{}, Body: pr, ContentLength: -1, Proto: "HTTP/2.0", ProtoMajor: 2}
	if p.auth != "" {
		req.Header.Set("Proxy-Authorization", p.auth)
	}
	resp, err := p.cc.RoundTrip(req)
	if err != nil {
		pw.Close()
		return nil, nil, err
	}
	return resp, pw, nil
}

// get forwards a GET of rawURL (http://...) on a stream.
func (p *h2Proxy) get(rawURL string) (int, string, error) {
	u, _ := url.Parse(rawURL)
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}, Proto: "HTTP/2.0", ProtoMajor: 2}
	if p.auth != "" {
		req.Header.Set("Proxy-Authorization", p.auth)
	}
	resp, err := p.cc.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// echoOnce writes msg on a tunnel and reads it back.
func echoOnce(t *testing.T, resp *http.Response, up io.Writer, msg string) {
	t.Helper()
	if _, err := io.WriteString(up, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, got); done <- err }()
	select {
	case err := <-done:
		if err != nil || string(got) != msg {
			t.Fatalf("echo: %q, %v", got, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("echo: no answer in 10 s")
	}
}

var _ = strings.Contains
