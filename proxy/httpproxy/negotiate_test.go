package httpproxy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/auth"
)

// noTickets is a TicketVerifier that refuses everything; the challenges only
// ask whether there is one.
type noTickets struct{}

func (noTickets) AcceptSPNEGO([]byte, netip.Addr) auth.KerberosLogin {
	return auth.KerberosLogin{Result: auth.KerberosMalformed}
}
func (noTickets) AcceptGSS([]byte, netip.Addr) auth.KerberosLogin {
	return auth.KerberosLogin{Result: auth.KerberosMalformed}
}

// TestChallenges: a 407 offers Negotiate when Kerberos is on, and Basic when
// passwords are checked and may be sent on the connection (not on a
// plaintext listener under auth.require_tls).
func TestChallenges(t *testing.T) {
	cfg := configs.Defaults()
	users, err := auth.ParseUsersFile(strings.NewReader("alice:$2y$04$ZB6vX3mK1QxH7kb6X0Ut1OVFzvUmHlVbS2Q3b3b9G7tyyBwq4Gh3C\n"), "users")
	if err != nil {
		t.Fatal(err)
	}
	g := auth.NewGate(auth.GateOptions{Throttle: cfg.Auth.Throttle})
	t.Cleanup(g.Close)
	basic := Challenge(&cfg)
	for _, tc := range []struct {
		name       string
		v          auth.Verifier
		requireTLS bool
		secure     bool
		want       []string
	}{
		{"passwords", users, false, false, []string{basic}},
		{"passwords and tickets", auth.WithTickets(users, noTickets{}, nil), false, false, []string{"Negotiate", basic}},
		{"tickets only", auth.WithTickets(nil, noTickets{}, nil), false, true, []string{"Negotiate"}},
		{"require_tls, plaintext", auth.WithTickets(users, noTickets{}, nil), true, false, []string{"Negotiate"}},
		{"require_tls, TLS", auth.WithTickets(users, noTickets{}, nil), true, true, []string{"Negotiate", basic}},
	} {
		c := cfg
		c.Auth.RequireTLS = tc.requireTLS
		if got := Challenges(&c, g.Authenticator(tc.v, 0), tc.secure); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q; want %q", tc.name, got, tc.want)
		}
	}
}

// TestWithAuthReply: the mutual-authentication token goes into the head of
// the response that follows the login, before its empty line, once.
func TestWithAuthReply(t *testing.T) {
	c := &client{sso: negotiated{reply: "Negotiate b2s="}}
	got := string(c.established())
	want := "HTTP/1.1 200 Connection established\r\nVia: 1.1 sockshaper\r\nProxy-Authenticate: Negotiate b2s=\r\n\r\n"
	if got != want {
		t.Errorf("established() = %q; want %q", got, want)
	}
	if got := string(c.withAuthReply([]byte("HTTP/1.1 200 OK\r\n\r\n"))); got != "HTTP/1.1 200 OK\r\n\r\n" {
		t.Errorf("second response: %q; want no token", got)
	}
}

// FuzzIsNegotiate: no Proxy-Authorization value is taken for both schemes,
// and every value whose Negotiate token decodes is of the Negotiate scheme.
func FuzzIsNegotiate(f *testing.F) {
	for _, v := range []string{"Negotiate YIIB", "negotiate  YIIB", "Basic YWxpY2U6cHc=", "Negotiate", "NTLM TlRMTVNTUAAB", " Negotiate x", ""} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		neg := IsNegotiate(v)
		if _, _, basic := ParseBasic(v); neg && basic {
			t.Fatalf("%q is both Negotiate and Basic", v)
		}
		if _, ok := auth.NegotiateToken(v); ok && !neg {
			t.Fatalf("%q has a Negotiate token but is not of the scheme", v)
		}
	})
}
