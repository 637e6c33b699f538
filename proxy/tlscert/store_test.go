package tlscert

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/testca"
)

func TestStoreReloadsAndKeepsTheLastGoodPair(t *testing.T) {
	ca := testca.New(t, "ca")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, time.Hour, "proxy.test").Write(t, dir, "p")
	var loaded, failed atomic.Int32
	s, err := New(certFile, keyFile, Options{Loaded: func(time.Time) { loaded.Add(1) }, Failed: func() { failed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	first := s.Current().Leaf.SerialNumber
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Watch(ctx, 20*time.Millisecond)

	ca.Server(t, 2*time.Hour, "proxy.test").Write(t, dir, "p")
	waitFor(t, func() bool { return s.Current().Leaf.SerialNumber.Cmp(first) != 0 })
	second := s.Current().Leaf.SerialNumber

	// A key that is not the certificate's: the pair in use stays, once logged.
	os.WriteFile(keyFile+".new", ca.Client(t, "x").KeyPEM, 0o600)
	os.Rename(keyFile+".new", keyFile) // one change, as renewal tools make it
	waitFor(t, func() bool { return failed.Load() >= 1 })
	time.Sleep(100 * time.Millisecond) // more looks at the same broken file
	if s.Current().Leaf.SerialNumber.Cmp(second) != 0 {
		t.Error("a broken pair replaced the one in use")
	}
	if n := failed.Load(); n != 1 {
		t.Errorf("a broken pair that did not change failed %d times, want once", n)
	}
	if err := s.Reload("", ""); err == nil {
		t.Error("Reload of a broken pair reported no error")
	}
	if loaded.Load() != 2 {
		t.Errorf("%d pairs loaded, want 2", loaded.Load())
	}
	cert, _ := s.GetCertificate(nil)
	if cert.Leaf.SerialNumber.Cmp(second) != 0 {
		t.Error("GetCertificate does not hand out the pair in use")
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	if _, err := Load(missing, missing); err == nil || !strings.Contains(err.Error(), "tls.cert_file") || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load of a missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not PEM"), 0o600)
	if _, err := Load(bad, bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load of a bad file: %v", err)
	}
}

func TestCovers(t *testing.T) {
	ca := testca.New(t, "ca")
	dir := t.TempDir()
	c, k := ca.Server(t, time.Hour, "proxy.campus.example", "192.0.2.1").Write(t, dir, "p")
	p, err := Load(c, k)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"proxy.campus.example": true, "192.0.2.1": true, "other.example": false, "campus.example": false} {
		if err := p.Covers(name); (err == nil) != want {
			t.Errorf("Covers(%q) = %v, want covered %v", name, err, want)
		}
	}
}

// TestFailureReason drives real handshakes that fail each way a client can make
// them fail, and checks the reason each is counted under.
func TestFailureReason(t *testing.T) {
	ca := testca.New(t, "ca")
	dir := t.TempDir()
	c, k := ca.Server(t, time.Hour, "proxy.test").Write(t, dir, "p")
	s, err := New(c, k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	clientCA := testca.New(t, "clients")
	strangerCA := testca.New(t, "strangers")
	tests := []struct {
		name      string
		clientCAs bool
		client    func(net.Conn)
		want      string
	}{
		{"plain HTTP", false, func(c net.Conn) { io.WriteString(c, "GET / HTTP/1.1\r\n\r\n") }, FailNotTLS},
		{"closed", false, func(c net.Conn) { c.Close() }, FailClientClosed},
		{"silent", false, func(c net.Conn) {}, FailTimeout},
		{"untrusted", false, func(c net.Conn) {
			tls.Client(c, &tls.Config{ServerName: "proxy.test", RootCAs: strangerCA.Pool}).Handshake()
		}, FailClientRejected},
		{"untrusted TLS 1.2", false, func(c net.Conn) {
			tls.Client(c, &tls.Config{ServerName: "proxy.test", RootCAs: strangerCA.Pool, MaxVersion: tls.VersionTLS12}).Handshake()
		}, FailClientRejected},
		{"TLS 1.1", false, func(c net.Conn) {
			tls.Client(c, &tls.Config{ServerName: "proxy.test", RootCAs: ca.Pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}).Handshake()
		}, FailProtocolVersion},
		{"no client certificate", true, func(c net.Conn) {
			tls.Client(c, &tls.Config{ServerName: "proxy.test", RootCAs: ca.Pool}).Handshake()
		}, FailNoClientCert},
		{"stranger's client certificate", true, func(c net.Conn) {
			pair := strangerCA.Client(t, "mallory")
			cert, _ := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
			// Sent although the server asks for its own CAs' certificates.
			send := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
			tls.Client(c, &tls.Config{ServerName: "proxy.test", RootCAs: ca.Pool, GetClientCertificate: send}).Handshake()
		}, FailBadClientCert},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server, client := tcpPair(t)
			var cas = clientCA.Pool
			if !tc.clientCAs {
				cas = nil
			}
			go tc.client(client)
			server.SetDeadline(time.Now().Add(500 * time.Millisecond))
			err := tls.Server(server, ServerConfig(s, cas)).Handshake()
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			if got := FailureReason(err); got != tc.want {
				t.Errorf("FailureReason(%v) = %s, want %s", err, got, tc.want)
			}
			client.Close()
		})
	}
	if got := FailureReason(fmt.Errorf("wrapped: %w", syscall.ECONNRESET)); got != FailClientClosed {
		t.Errorf("a reset: %s", got)
	}
	if got := FailureReason(errors.New("tls: something new")); got != FailOther {
		t.Errorf("an unknown error: %s", got)
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
