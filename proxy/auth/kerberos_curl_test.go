package auth

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// negotiateProxy is a minimal HTTP proxy that answers every request itself after
// a Negotiate login: it stands in for the HTTP front until the core lands, so
// that curl --proxy-negotiate can be run against AcceptSPNEGO.
type negotiateProxy struct {
	*httptest.Server
	mu      sync.Mutex
	results []KerberosResult
	replies int // logins answered with a mutual-authentication token
}

func startNegotiateProxy(t *testing.T, v TicketVerifier) *negotiateProxy {
	p := &negotiateProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := NegotiateToken(r.Header.Get("Proxy-Authorization"))
		if !ok {
			w.Header().Set("Proxy-Authenticate", NegotiateChallenge(nil))
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		l := v.AcceptSPNEGO(token, netip.MustParseAddrPort(r.RemoteAddr).Addr())
		p.mu.Lock()
		p.results = append(p.results, l.Result)
		p.mu.Unlock()
		if l.Result != KerberosOK {
			w.Header().Set("Proxy-Authenticate", NegotiateChallenge(nil))
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		if l.Reply != nil {
			p.mu.Lock()
			p.replies++
			p.mu.Unlock()
			w.Header().Set("Proxy-Authenticate", NegotiateChallenge(l.Reply))
		}
		fmt.Fprintf(w, "%s for %s", r.URL, l.Identity.User)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *negotiateProxy) last() KerberosResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.results) == 0 {
		return ""
	}
	return p.results[len(p.results)-1]
}

// TestNegotiateWithCurl is the HTTP interop test: curl --proxy-negotiate (MIT
// libgssapi, SPNEGO) logs alice in to the proxy's HTTP service; a curl whose
// clock is 10 minutes fast (faketime, with the service ticket got before) is
// refused as clock_skew; eve of the other realm as realm.
func TestNegotiateWithCurl(t *testing.T) {
	curl := needTool(t, "curl", "curl")
	k := kdctest.Start(t)
	v := newKerberos(t, kerberosConfig(proxyKeytab(t, k)), KerberosOptions{})
	p := startNegotiateProxy(t, v)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(p.URL, "http://"))
	run := func(cc string, prefix ...string) (string, error) {
		args := append(prefix, curl, "-sS", "--max-time", "20", "--proxy", "http://proxy.campus.example:"+port,
			"--resolve", "proxy.campus.example:"+port+":127.0.0.1", "--proxy-negotiate", "-U", ":", "http://origin.example/page")
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = k.Env(cc)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	alice := k.Kinit("alice@" + kdctest.Realm)
	if out, err := run(alice); err != nil || out != "http://origin.example/page for alice" || p.last() != KerberosOK {
		t.Fatalf("alice: %v %q (%s)", err, out, p.last())
	}
	p.mu.Lock()
	replies := p.replies
	p.mu.Unlock()
	t.Logf("curl asked for mutual authentication: %v", replies > 0)

	faketime := needTool(t, "faketime", "faketime")
	k.Kvno(alice, kdctest.HTTPService) // the ticket exists: only the authenticator is made under the fake clock
	if out, err := run(alice, faketime, "-f", "+10m"); strings.Contains(out, "for alice") || p.last() != KerberosClockSkew {
		t.Errorf("clock 10 minutes fast: %v %q (%s); want clock_skew", err, out, p.last())
	}

	eve := k.Kinit("eve@" + kdctest.OtherRealm)
	if out, err := run(eve); strings.Contains(out, "for eve") || p.last() != KerberosRealm {
		t.Errorf("eve: %v %q (%s); want realm", err, out, p.last())
	}
}

// needTool returns the path of a tool, failing under CI when it is missing.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: install the Debian package %s (scripts/test.sh does)", name, pkg)
	}
	t.Skipf("%s not found: apt-get install %s", name, pkg)
	return ""
}
