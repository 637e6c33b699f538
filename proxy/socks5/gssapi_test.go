package socks5

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/internal/kdctest"
	"github.com/sockshaper/sockshaper/proxy/auth"
)

// gssServer is a minimal SOCKS5 server around NegotiateGSSAPI: method 0x01 only,
// CONNECT only, then a plain relay. It stands in for the front until the core
// lands, so that curl can be run against the sub-negotiation itself.
type gssServer struct {
	ln     net.Listener
	v      auth.TicketVerifier
	mu     sync.Mutex
	logins []auth.KerberosLogin
	errs   []error
	wg     sync.WaitGroup
}

func startGSSServer(t *testing.T, v auth.TicketVerifier) *gssServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &gssServer{ln: ln, v: v}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *gssServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	rw := struct {
		io.Reader
		io.Writer
	}{br, c}
	// The method reply goes out before the greeting is read: curl 7.88 (Debian
	// 12) forgets that it offered GSS-API when the reply does not arrive within
	// the call that sent the greeting.
	c.Write([]byte{5, MethodGSSAPI})
	var head [2]byte
	if _, err := io.ReadFull(br, head[:]); err != nil || head[0] != 5 {
		return
	}
	methods := make([]byte, head[1])
	io.ReadFull(br, methods)
	if !strings.ContainsRune(string(methods), MethodGSSAPI) {
		return
	}
	login, err := NegotiateGSSAPI(rw, AcceptWith(s.v, netip.MustParseAddrPort(c.RemoteAddr().String()).Addr()))
	s.mu.Lock()
	s.logins, s.errs = append(s.logins, login), append(s.errs, err)
	s.mu.Unlock()
	if err != nil {
		return
	}
	target, err := readConnect(br)
	if err != nil {
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	c.SetDeadline(time.Time{})
	go io.Copy(up, br)
	io.Copy(c, up)
}

// readConnect reads a CONNECT request to an IPv4 address or a name.
func readConnect(r *bufio.Reader) (string, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil || h[1] != 1 {
		return "", fmt.Errorf("request %x: %v", h, err)
	}
	var host string
	switch h[3] {
	case 1:
		var a [4]byte
		io.ReadFull(r, a[:])
		host = netip.AddrFrom4(a).String()
	case 3:
		n, _ := r.ReadByte()
		b := make([]byte, n)
		io.ReadFull(r, b)
		host = string(b)
	default:
		return "", fmt.Errorf("address type %d", h[3])
	}
	var p [2]byte
	_, err := io.ReadFull(r, p[:])
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(p[:])))), err
}

// next waits for the n-th sub-negotiation (from 1) to end, and returns it.
func (s *gssServer) next(t *testing.T, n int) (auth.KerberosLogin, error) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		if len(s.logins) >= n {
			defer s.mu.Unlock()
			return s.logins[n-1], s.errs[n-1]
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("sub-negotiation %d did not end", n)
		}
	}
}

// TestGSSAPIWithCurl is the interop acceptance test: curl --socks5-gssapi (MIT
// libgssapi) runs RFC 1961 against NegotiateGSSAPI: alice's ticket is accepted,
// curl checks the proxy's mutual-authentication token, and the protection level
// is agreed, as a Wrap token or (--socks5-gssapi-nec) a bare byte that curl
// unwraps and verifies. Debian 12's curl 7.88 then fails on its own: it forgets
// that it offered GSS-API when the method reply does not come within the call
// that sent the greeting ("per-message authentication is not supported"), and
// after a good sub-negotiation it falls through to "Undocumented SOCKS5 mode"
// instead of sending the request. So each mode is tried until curl takes the
// path that runs the sub-negotiation, and that run must end in curl's verbose
// "access ... granted" (or, with a curl without the bug, the page).
// TestGSSAPIRequest shows the request going on after the sub-negotiation.
func TestGSSAPIWithCurl(t *testing.T) {
	curl := curlWithGSSAPI(t)
	k := kdctest.Start(t)
	srv, _ := startKerberosServer(t, k)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "through the proxy") }))
	defer page.Close()
	runs := 0
	// fetch runs curl until the sub-negotiation runs, and returns curl's
	// output and error and the server's login.
	fetch := func(cc string, extra ...string) (string, error, auth.KerberosLogin, error) {
		t.Helper()
		for range 40 {
			args := append([]string{"-v", "-sS", "--max-time", "20", "--proxy", "socks5://" + srv.ln.Addr().String(),
				"--socks5-gssapi", "--socks5-gssapi-service", kdctest.SOCKSService}, extra...)
			cmd := exec.Command(curl, append(args, page.URL)...)
			cmd.Env = k.Env(cc)
			out, err := cmd.CombinedOutput()
			runs++
			l, nerr := srv.next(t, runs)
			if strings.Contains(string(out), "per-message authentication is not supported") && l.Result == auth.KerberosMalformed {
				continue // curl's bug: it never sent a token
			}
			return string(out), err, l, nerr
		}
		t.Fatal("curl never ran the sub-negotiation in 40 tries")
		return "", nil, auth.KerberosLogin{}, nil
	}

	alice := k.Kinit("alice@" + kdctest.Realm)
	for _, mode := range [][]string{nil, {"--socks5-gssapi-nec"}} {
		out, err, l, nerr := fetch(alice, mode...)
		if nerr != nil || l.Identity.User != "alice" || l.Reply == nil {
			t.Errorf("curl %v: login %+v, %v; want alice, mutually authenticated", mode, l, nerr)
		}
		fetched := err == nil && strings.HasSuffix(out, "through the proxy")
		granted := strings.Contains(out, "SOCKS5 server authenticated user alice@CAMPUS.EXAMPLE with GSS-API") &&
			strings.Contains(out, "SOCKS5 access without GSS-API data protection granted") &&
			strings.Contains(out, "Undocumented SOCKS5 mode") // curl 7.88's fall-through
		if !fetched && !granted {
			t.Errorf("curl %v: %v\n%s", mode, err, out)
		}
	}

	eve := k.Kinit("eve@" + kdctest.OtherRealm)
	start := time.Now()
	out, err, l, nerr := fetch(eve)
	if err == nil || l.Result != auth.KerberosRealm || nerr == nil || strings.Contains(out, "granted") {
		t.Errorf("eve of the other realm: curl %v, login %+v, %v\n%s", err, l, nerr, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a refusal took %v", d)
	}
}

// startKerberosServer starts a gssServer checking tickets for the SOCKS service
// against a keytab exported from k.
func startKerberosServer(t *testing.T, k *kdctest.KDC) (*gssServer, *auth.Kerberos) {
	t.Helper()
	kt := filepath.Join(t.TempDir(), "proxy.keytab")
	k.Keytab(kt, kdctest.HTTPService, kdctest.SOCKSService)
	v, err := auth.NewKerberos(configs.Kerberos{KeytabFile: kt, ServiceNames: []string{kdctest.SOCKSService},
		Realms: []string{kdctest.Realm}, UserName: configs.KerberosShortNames, MaxClockSkew: 5 * time.Minute,
		Enctypes: configs.DefaultKerberosEnctypes()}, auth.KerberosOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return startGSSServer(t, v), v
}

// curlWithGSSAPI returns curl's path, failing under CI when curl or its
// GSS-API support is missing.
func curlWithGSSAPI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err == nil {
		if out, _ := exec.Command(p, "-V").Output(); strings.Contains(string(out), "GSS-API") {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("curl with GSS-API not found: install the Debian package curl")
	}
	t.Skip("curl with GSS-API not found")
	return ""
}
