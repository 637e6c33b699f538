package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestKeepAnswer(t *testing.T) {
	tests := []struct {
		name    string
		answer  string
		status  int
		closing bool
		err     error
	}{
		{"PAC file", "HTTP/1.1 200 OK\r\nContent-Type: application/x-ns-proxy-autoconfig\r\nContent-Length: 5\r\n\r\nhello", 200, false, nil},
		{"challenge", "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n", 407, false, nil},
		{"challenge closing", "HTTP/1.1 407 Proxy Authentication Required\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno", 407, true, nil},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, false, nil},
		{"closed before the answer", "", 0, false, io.EOF},
		{"body too large", "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("x", 70000), 0, false, errKeepAnswer},
		{"head too large", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("x", 70000) + "\r\n\r\n", 0, false, errKeepAnswer},
		{"body until the close", "HTTP/1.1 200 OK\r\n\r\nabc", 200, true, nil},
		{"body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, false, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		status, closing, err := newKeepReader(strings.NewReader(tt.answer)).answer()
		if status != tt.status || closing != tt.closing || !errors.Is(err, tt.err) {
			t.Errorf("%s: answer() = %d, %v, %v; want %d, %v, %v", tt.name, status, closing, err, tt.status, tt.closing, tt.err)
		}
	}
	if _, _, err := newKeepReader(strings.NewReader("SSH-2.0-x\r\n")).answer(); err == nil {
		t.Error("answer() accepted a line that is no HTTP status line")
	}
	// Two answers on one connection, each within its own bound.
	two := "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n" + strings.Repeat("x", 40000)
	kr := newKeepReader(strings.NewReader(two + two))
	for i := range 2 {
		if status, _, err := kr.answer(); status != 200 || err != nil {
			t.Errorf("answer %d of two of 40 kB each: %d, %v", i, status, err)
		}
	}
}

// FuzzKeepAnswer feeds arbitrary proxy answers to keepReader.answer: it must
// not panic, must report a status of three digits when it reports no error,
// and must never read more than maxKeepAnswer bytes of the connection.
func FuzzKeepAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
	f.Add([]byte("HTTP/1.1 407 Proxy Authentication Required\r\nConnection: close\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 503 x\r\nContent-Length: 99999999999\r\n\r\n"))
	f.Add(append([]byte("HTTP/1.1 200 OK\r\n\r\n"), bytes.Repeat([]byte("x"), 70000)...))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		src := bytes.NewReader(answer)
		status, _, err := newKeepReader(src).answer()
		if err == nil && (status < 100 || status > 999) {
			t.Errorf("status %d without an error", status)
		}
		if read := len(answer) - src.Len(); read > maxKeepAnswer {
			t.Errorf("read %d bytes of the connection, more than %d", read, maxKeepAnswer)
		}
	})
}
