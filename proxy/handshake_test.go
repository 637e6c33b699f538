package proxy

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// discardConn is the write side of a session in the fuzz target: the handshake's
// replies go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)        { return len(p), nil }
func (discardConn) Close() error                       { return nil }
func (discardConn) SetDeadline(time.Time) error        { return nil }
func (discardConn) SetReadDeadline(t time.Time) error  { return nil }
func (discardConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzHandshake feeds arbitrary client bytes to the greeting, RFC 1929 and request
// parsers; they must never panic and must either fail or produce a destination.
func FuzzHandshake(f *testing.F) {
	f.Add(cat(loggedIn(), requestMsg(1, "127.0.0.1", 80)))
	f.Add(cat(loggedIn(), requestMsg(1, "example.org", 443)))
	f.Add(cat(loggedIn(), requestMsg(3, "::1", 53)))
	f.Add([]byte{5, 1, 0, 5, 1, 0, 3, 0, 0, 80})
	f.Add([]byte{5, 255})
	cfg := loadTestConfig(f, testConfig)
	srv := New(cfg, loadUsers(f, cfg), Options{})
	f.Fuzz(func(t *testing.T, in []byte) {
		sess := &session{srv: srv, pol: srv.policy.Load(), conn: discardConn{}, client: netip.MustParseAddrPort("127.0.0.1:1"),
			log: srv.log, ctx: context.Background(), start: time.Now()}
		req, err := sess.handshake(bufio.NewReader(bytes.NewReader(in)))
		if err == nil && req.DestAddr == nil {
			t.Fatal("request without destination")
		}
		if err == nil && sess.requested == "" {
			t.Fatal("request accepted without a destination string")
		}
	})
}
