package httpproxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestParseRequestAccepts(t *testing.T) {
	tests := []struct {
		name, head string
		check      func(*Request) bool
	}{
		{"absolute GET", "GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
			func(r *Request) bool {
				return r.Method == "GET" && r.Minor == 1 && r.Host == "example.com" && r.ContentLength == -1 && !r.Close && len(r.Fields) == 2
			}},
		{"length", "POST http://e/ HTTP/1.1\r\nHost: e\r\nContent-Length: 12\r\n\r\n",
			func(r *Request) bool { return r.ContentLength == 12 && !r.Chunked && r.HasBody() }},
		{"chunked", "POST http://e/ HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n",
			func(r *Request) bool { return r.Chunked && len(r.Codings) == 1 && r.Codings[0] == "gzip" }},
		{"http/1.0 closes", "GET http://e/ HTTP/1.0\r\n\r\n", func(r *Request) bool { return r.Close && r.Minor == 0 }},
		{"http/1.0 keep-alive", "GET http://e/ HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", func(r *Request) bool { return !r.Close }},
		{"connection close", "GET http://e/ HTTP/1.1\r\nHost: e\r\nConnection: close, X-Foo\r\n\r\n",
			func(r *Request) bool { return r.Close && len(r.Hop) == 2 && r.Hop[1] == "x-foo" }},
		{"value spaces trimmed, empty value", "CONNECT e:443 HTTP/1.1\r\nHost:   e:443 \t\r\nX-Empty:\r\n\r\n",
			func(r *Request) bool { return r.Host == "e:443" && r.Fields[1].Value == "" }},
		{"obs-text in value", "GET http://e/ HTTP/1.1\r\nHost: e\r\nX: caf\xc3\xa9\r\n\r\n", func(r *Request) bool { return true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRequest([]byte(tc.head))
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if !tc.check(r) {
				t.Errorf("parsed %+v", r)
			}
		})
	}
}

// TestParseRequestRefuses covers the smuggling forms and malformed heads, each
// with the status the front answers.
func TestParseRequestRefuses(t *testing.T) {
	const ok = "GET http://e/ HTTP/1.1\r\nHost: e\r\n"
	tests := []struct {
		name, head string
		status     int
	}{
		{"length and chunked", ok + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"chunked and length", ok + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
		{"two lengths", ok + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
		{"two equal lengths", ok + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 400},
		{"length list", ok + "Content-Length: 5, 5\r\n\r\n", 400},
		{"signed length", ok + "Content-Length: +5\r\n\r\n", 400},
		{"negative length", ok + "Content-Length: -1\r\n\r\n", 400},
		{"empty length", ok + "Content-Length:\r\n\r\n", 400},
		{"huge length", ok + "Content-Length: 99999999999999999999\r\n\r\n", 400},
		{"chunked not last", ok + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400},
		{"chunked twice", ok + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"unknown coding only", ok + "Transfer-Encoding: identity\r\n\r\n", 400},
		{"bad coding token", ok + "Transfer-Encoding: \"chunked\"\r\n\r\n", 400},
		{"chunked in 1.0", "POST http://e/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"obs-fold", ok + "X-A: 1\r\n  continued\r\n\r\n", 400},
		{"obs-fold tab", ok + "X-A: 1\r\n\tcontinued\r\n\r\n", 400},
		{"space before colon", ok + "Content-Length : 5\r\n\r\n", 400},
		{"bare LF", "GET http://e/ HTTP/1.1\nHost: e\n\n", 400},
		{"bare LF in fields", ok + "X: 1\n\r\n", 400},
		{"bare CR", ok + "X: 1\r2\r\n\r\n", 400},
		{"NUL in value", ok + "X: a\x00b\r\n\r\n", 400},
		{"no colon", ok + "Nonsense\r\n\r\n", 400},
		{"empty name", ok + ": x\r\n\r\n", 400},
		{"no host", "GET http://e/ HTTP/1.1\r\n\r\n", 400},
		{"two hosts", ok + "Host: f\r\n\r\n", 400},
		{"double space", "GET  http://e/ HTTP/1.1\r\nHost: e\r\n\r\n", 400},
		{"space in target", "GET http://e/a b HTTP/1.1\r\nHost: e\r\n\r\n", 400},
		{"lower-case version", "GET http://e/ http/1.1\r\nHost: e\r\n\r\n", 400},
		{"http/2", "GET http://e/ HTTP/2.0\r\nHost: e\r\n\r\n", 505},
		{"http/0.9 style", "GET http://e/\r\n\r\n", 400},
		{"bad method", "G(T http://e/ HTTP/1.1\r\nHost: e\r\n\r\n", 400},
		{"too many fields", ok + strings.Repeat("X: y\r\n", 100) + "\r\n", 431},
		{"too large", ok + "X: " + strings.Repeat("y", maxHeadBytes) + "\r\n\r\n", 431},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRequest([]byte(tc.head))
			if err == nil {
				t.Fatalf("ParseRequest accepted %q: %+v", tc.head, r)
			}
			if got := statusOf(err); got != tc.status {
				t.Errorf("status %d (%v), want %d", got, err, tc.status)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		method, target string
		form           form
		want           string // hostPort + " " + path, or "error"
	}{
		{"CONNECT", "example.com:443", authorityForm, "example.com:443 "},
		{"CONNECT", "[2001:db8::1]:443", authorityForm, "[2001:db8::1]:443 "},
		{"CONNECT", "192.0.2.1:8080", authorityForm, "192.0.2.1:8080 "},
		{"CONNECT", "example.com", 0, "error"},
		{"CONNECT", "example.com:0", 0, "error"},
		{"CONNECT", "example.com:99999", 0, "error"},
		{"CONNECT", "user@example.com:443", 0, "error"},
		{"CONNECT", "[example.com]:443", 0, "error"},
		{"CONNECT", "[192.0.2.1]:443", 0, "error"},
		{"GET", "http://Example.COM./a/b?c=d", absoluteForm, "example.com:80 /a/b?c=d"},
		{"GET", "HTTP://e:8080", absoluteForm, "e:8080 /"},
		{"GET", "http://e?q", absoluteForm, "e:80 /?q"},
		{"GET", "http://[::1]/x", absoluteForm, "[::1]:80 /x"},
		{"GET", "http://[::ffff:10.0.0.1]:81/", absoluteForm, "10.0.0.1:81 /"},
		{"GET", "http://::1/x", 0, "error"},
		{"GET", "http://[::1/x", 0, "error"},
		{"GET", "http://u:p@e/", 0, "error"},
		{"GET", "http://e/#frag", 0, "error"},
		{"GET", "http://e:/", 0, "error"},
		{"GET", "http://e:+80/", 0, "error"},
		{"GET", "http://e_f..g/", 0, "error"},
		{"GET", "http://a%2eb/", 0, "error"},
		{"GET", "https://e/", 0, "error"},
		{"GET", "ftp://e/", 0, "error"},
		{"GET", "*", 0, "error"},
		{"GET", "/proxy.pac?x", originForm, "/proxy.pac?x"},
		{"GET", "/a#b", 0, "error"},
	}
	for _, tc := range tests {
		f, d, err := parseTarget(tc.method, tc.target)
		got := "error"
		switch {
		case err == nil && f == originForm:
			got = d.path
		case err == nil:
			got = d.hostPort() + " " + d.path
		}
		if got != tc.want || err == nil && f != tc.form {
			t.Errorf("parseTarget(%s, %q) = %v %q, %v; want %v %q", tc.method, tc.target, f, got, err, tc.form, tc.want)
		}
	}
}

func TestReadHead(t *testing.T) {
	const head = "GET http://e/ HTTP/1.1\r\nHost: e\r\n\r\n"
	// Empty lines before the request are skipped; the body and the next request
	// stay in the reader; a head arriving in small pieces is found.
	br := bufio.NewReaderSize(&trickle{b: []byte("\r\n" + head + "body" + head)}, maxHeadBytes)
	for i := range 2 {
		r, err := readHead(br)
		if err != nil || r.Host != "e" {
			t.Fatalf("head %d: %+v, %v", i, r, err)
		}
		if i == 0 {
			if b, _ := br.Peek(4); string(b) != "body" {
				t.Fatalf("after the head: %q", b)
			}
			br.Discard(4)
		}
	}
	if _, err := readHead(br); !errors.Is(err, io.EOF) {
		t.Errorf("at the end: %v, want EOF", err)
	}
	cut := bufio.NewReaderSize(strings.NewReader("GET http://e/ HTTP/1.1\r\nHo"), maxHeadBytes)
	if _, err := readHead(cut); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a head cut short: %v, want ErrUnexpectedEOF", err)
	}
	long := bufio.NewReaderSize(strings.NewReader("GET http://e/ HTTP/1.1\r\nX: "+strings.Repeat("y", maxHeadBytes)), maxHeadBytes)
	if _, err := readHead(long); statusOf(err) != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a head over the bound: %v, want 431", err)
	}
}

// trickle returns its bytes three at a time.
type trickle struct{ b []byte }

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 3)], r.b)
	r.b = r.b[n:]
	return n, nil
}

// FuzzParseRequest checks that the parser never panics, that what it accepts
// has one framing and one Host, and that net/http reads an accepted head the
// same way (method, target, length, chunked).
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET http://e/ HTTP/1.1\r\nHost: e\r\n\r\n",
		"POST http://e/ HTTP/1.1\r\nHost: e\r\nContent-Length: 3\r\n\r\n",
		"POST http://e/ HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"CONNECT e:443 HTTP/1.1\r\nHost: e:443\r\nProxy-Authorization: Basic YTpi\r\n\r\n",
		"GET http://e/ HTTP/1.0\r\n\r\n",
		"GET /proxy.pac HTTP/1.1\r\nHost: p:1080\r\nX: a\r\n b\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		r, err := ParseRequest(head)
		if err != nil {
			if s := statusOf(err); s != 400 && s != 431 && s != 505 {
				t.Fatalf("status %d", s)
			}
			return
		}
		hosts := 0
		for _, f := range r.Fields {
			if strings.EqualFold(f.Name, "Host") {
				hosts++
			}
		}
		if r.Chunked && r.ContentLength != -1 || r.Minor == 1 && hosts != 1 || hosts > 1 {
			t.Fatalf("accepted an ambiguous head: %+v", r)
		}
		std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			return // net/http is stricter about some targets; never looser here
		}
		chunked := len(std.TransferEncoding) > 0
		if std.Method != r.Method || std.RequestURI != r.Target || chunked != r.Chunked ||
			!chunked && std.ContentLength != max(r.ContentLength, 0) {
			t.Fatalf("net/http reads %s %s length %d chunked %v; we read %+v",
				std.Method, std.RequestURI, std.ContentLength, chunked, r)
		}
	})
}

// FuzzParseTarget checks that a target the front accepts names a valid host or
// address and a port, and an origin-form path for the origin.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"http://e:8080/a?b", "e:443", "[::1]:80", "/proxy.pac", "http://[::ffff:1.2.3.4]/"} {
		f.Add("GET", s)
		f.Add("CONNECT", s)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		fm, d, err := parseTarget(method, target)
		if err != nil || fm == originForm {
			return
		}
		tg := d.target
		if tg.Port == 0 || (tg.Host == "") == !tg.Addr.IsValid() || tg.Host != "" && !validHostName(tg.Host) {
			t.Fatalf("parseTarget(%q, %q) = %+v", method, target, d)
		}
		if fm == absoluteForm && !strings.HasPrefix(d.path, "/") {
			t.Fatalf("path %q", d.path)
		}
	})
}
