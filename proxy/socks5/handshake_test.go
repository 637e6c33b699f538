package socks5

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
	"github.com/sockshaper/sockshaper/shaping"
)

// cat joins message parts.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// loginMsg builds an RFC 1929 request.
func loginMsg(user, pass string) []byte {
	b := []byte{1, byte(len(user))}
	b = append(append(b, user...), byte(len(pass)))
	return append(b, pass...)
}

// requestMsg builds a SOCKS5 request for host (an IP or a name) and port.
func requestMsg(cmd byte, host string, port uint16) []byte {
	b := []byte{5, cmd, 0}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		b = append(append(b, atypIPv4), a.AsSlice()...)
	} else if err == nil {
		b = append(append(b, atypIPv6), a.AsSlice()...)
	} else {
		b = append(append(b, atypDomain, byte(len(host))), host...)
	}
	return binary.BigEndian.AppendUint16(b, port)
}

// discardConn is the client side of a connection in the fuzz target: the
// handshake's replies go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)        { return len(p), nil }
func (discardConn) Close() error                       { return nil }
func (discardConn) SetDeadline(time.Time) error        { return nil }
func (discardConn) SetReadDeadline(t time.Time) error  { return nil }
func (discardConn) SetWriteDeadline(t time.Time) error { return nil }

// fuzzCore returns a core whose policy authenticates alice (password "pw", at
// bcrypt's lowest cost).
func fuzzCore(t testing.TB) *tunnel.Core {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err := auth.LoadUsersFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := configs.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	gate := auth.NewGate(auth.GateOptions{Throttle: cfg.Auth.Throttle})
	t.Cleanup(gate.Close)
	return tunnel.New(&tunnel.Policy{Config: &cfg, Classifier: shaping.NewClassifier(cfg.Apps),
		Authn: gate.Authenticator(auth.WithTickets(users, stubVerifier{}, nil), cfg.Auth.CacheTTL)}, tunnel.Options{})
}

// offered returns the methods a greeting at the start of in offers.
func offered(in []byte) []byte {
	if len(in) < 2 || len(in) < 2+int(in[1]) {
		return nil
	}
	return in[2 : 2+int(in[1])]
}

// FuzzHandshake feeds arbitrary client bytes to the greeting, RFC 1929, RFC 1961
// (with a stub ticket verifier that takes the token "good") and request
// parsers; they must never panic and must either fail or produce a
// destination, for a user who logged in: alice by password, or the stub's "u"
// by GSS-API when the greeting offered it, whatever else it offered.
func FuzzHandshake(f *testing.F) {
	login := cat([]byte{5, 1, 2}, loginMsg("alice", "pw"))
	gss := cat([]byte{5, 2, 2, 1}, appendGSSMessage(nil, gssAuth, []byte("good")), appendGSSMessage(nil, gssProtection, []byte{0}))
	f.Add(cat(login, requestMsg(1, "127.0.0.1", 80)))
	f.Add(cat(login, requestMsg(1, "example.org", 443)))
	f.Add(cat(login, requestMsg(3, "::1", 53)))
	f.Add(cat(gss, requestMsg(1, "example.org", 443)))
	f.Add(cat([]byte{5, 1, 1}, appendGSSMessage(nil, gssAuth, []byte("good")), appendGSSMessage(nil, gssProtection, []byte("W\x00")),
		requestMsg(1, "127.0.0.1", 80)))
	f.Add(cat([]byte{5, 1, 1}, appendGSSMessage(nil, gssAuth, []byte("bad")), requestMsg(1, "127.0.0.1", 80)))
	f.Add([]byte{5, 1, 0, 5, 1, 0, 3, 0, 0, 80})
	f.Add([]byte{5, 255})
	core := fuzzCore(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		conn := core.NewConn(discardConn{}, netip.MustParseAddrPort("127.0.0.1:1"), tunnel.ConnHooks{})
		s := conn.NewSession("socks5")
		req, err := handshake(s, bufio.NewReader(bytes.NewReader(in)))
		if err == nil {
			want := "alice"
			if bytes.IndexByte(offered(in), MethodGSSAPI) >= 0 {
				want = "u"
			}
			if s.User() != want {
				t.Fatalf("request accepted for user %q after greeting %x; want %q", s.User(), offered(in), want)
			}
		}
		if err == nil && req.Target.Host == "" && !req.Target.Addr.IsValid() {
			t.Fatal("request without destination")
		}
		if err == nil && (s.Requested() == "" || s.Requested() != req.Requested) {
			t.Fatalf("request accepted with destination string %q, recorded %q", req.Requested, s.Requested())
		}
		if err == nil && req.Command == "" {
			t.Fatal("request accepted without a command")
		}
	})
}

// BenchmarkHandshake is one client's handshake as the front reads it: a
// greeting, an RFC 1929 login (verified once, then from the cache) and a CONNECT
// request by name, with the replies written.
func BenchmarkHandshake(b *testing.B) {
	core := fuzzCore(b)
	in := cat([]byte{5, 1, 2}, loginMsg("alice", "pw"), requestMsg(1, "example.org", 443))
	r := bytes.NewReader(in)
	br := bufio.NewReader(r)
	client := netip.MustParseAddrPort("127.0.0.1:1")
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r.Reset(in)
		br.Reset(r)
		s := core.NewConn(discardConn{}, client, tunnel.ConnHooks{}).NewSession("socks5")
		if _, err := handshake(s, br); err != nil {
			b.Fatal(err)
		}
	}
}
