package socks5

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/sockshaper/sockshaper/internal/kdctest"
	"github.com/sockshaper/sockshaper/proxy/auth"
)

// gssClient runs the client side of RFC 1961 on c with a Go-built token.
type gssClient struct {
	c    net.Conn
	auth types.Authenticator
}

func (g *gssClient) greet(t *testing.T, token []byte) {
	t.Helper()
	g.c.Write([]byte{5, 1, MethodGSSAPI})
	var sel [2]byte
	if _, err := io.ReadFull(g.c, sel[:]); err != nil || sel != [2]byte{5, MethodGSSAPI} {
		t.Fatalf("method reply %x, %v", sel, err)
	}
	g.c.Write(appendGSSMessage(nil, gssAuth, token))
}

// wrapLevel returns the client's protection-level Wrap token for level.
func (g *gssClient) wrapLevel(t *testing.T, level byte) []byte {
	t.Helper()
	wt := gssapi.WrapToken{EC: 12, SndSeqNum: uint64(g.auth.SeqNumber), Payload: []byte{level}}
	if err := wt.SetCheckSum(g.auth.SubKey, keyusage.GSSAPI_INITIATOR_SEAL); err != nil {
		t.Fatal(err)
	}
	b, _ := wt.Marshal()
	return b
}

// TestGSSAPIRequest: after the sub-negotiation the client's CONNECT request
// goes through in the clear and the page comes back; a protection level other
// than none, a bad Wrap token or a refused ticket ends in the abort message.
func TestGSSAPIRequest(t *testing.T) {
	k := kdctest.Start(t)
	srv, _ := startKerberosServer(t, k)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	defer page.Close()
	tk := k.ServiceTicket("bob@"+kdctest.Realm, kdctest.SOCKSService)
	runs := 0
	dial := func(o kdctest.TokenOptions) *gssClient {
		c, err := net.Dial("tcp", srv.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		token, a := tk.Token(t, o)
		g := &gssClient{c: c, auth: a}
		g.greet(t, token)
		runs++
		return g
	}

	g := dial(kdctest.TokenOptions{Mutual: true})
	rep, err := readGSSMessage(g.c, gssAuth)
	if err != nil || len(rep) < 20 {
		t.Fatalf("AP-REP message: %v", err)
	}
	g.c.Write(appendGSSMessage(nil, gssProtection, g.wrapLevel(t, ProtectionNone)))
	reply, err := readGSSMessage(g.c, gssProtection)
	var wt gssapi.WrapToken
	if err != nil || wt.Unmarshal(reply, true) != nil || !bytes.Equal(wt.Payload, []byte{ProtectionNone}) {
		t.Fatalf("protection reply %x, %v", reply, err)
	}
	if ok, err := wt.Verify(g.auth.SubKey, keyusage.GSSAPI_ACCEPTOR_SEAL); !ok {
		t.Fatalf("the proxy's Wrap token: %v", err)
	}
	ap := netip.MustParseAddrPort(strings.TrimPrefix(page.URL, "http://"))
	a4 := ap.Addr().As4()
	g.c.Write([]byte{5, 1, 0, 1, a4[0], a4[1], a4[2], a4[3], byte(ap.Port() >> 8), byte(ap.Port())})
	var head [10]byte
	if _, err := io.ReadFull(g.c, head[:]); err != nil || head[1] != 0 {
		t.Fatalf("CONNECT reply %x, %v", head, err)
	}
	io.WriteString(g.c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	body, _ := io.ReadAll(g.c)
	if !strings.HasSuffix(string(body), "hello") {
		t.Errorf("through the proxy: %q", body)
	}
	if l, err := srv.next(t, runs); err != nil || l.Identity.User != "bob" {
		t.Errorf("login %+v, %v", l, err)
	}

	for _, tc := range []struct {
		name    string
		level   func(g *gssClient) []byte
		wantErr error
	}{
		{"integrity asked", func(g *gssClient) []byte { return g.wrapLevel(t, 1) }, ErrGSSAPIProtection},
		{"NEC style, confidentiality", func(*gssClient) []byte { return []byte{2} }, ErrGSSAPIProtection},
		{"tampered Wrap token", func(g *gssClient) []byte { b := g.wrapLevel(t, 0); b[len(b)-1] ^= 1; return b }, nil},
	} {
		g := dial(kdctest.TokenOptions{})
		g.c.Write(appendGSSMessage(nil, gssProtection, tc.level(g)))
		var abort [2]byte
		if _, err := io.ReadFull(g.c, abort[:]); err != nil || abort != [2]byte{gssVersion, gssAbort} {
			t.Errorf("%s: reply %x, %v; want the abort message", tc.name, abort, err)
		}
		if _, err := srv.next(t, runs); err == nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: error %v; want %v", tc.name, err, tc.wantErr)
		}
	}

	g = dial(kdctest.TokenOptions{Skew: time.Hour})
	var abort [2]byte
	if _, err := io.ReadFull(g.c, abort[:]); err != nil || abort != [2]byte{gssVersion, gssAbort} {
		t.Errorf("skewed client: reply %x, %v; want the abort message", abort, err)
	}
	if l, err := srv.next(t, runs); l.Result != auth.KerberosClockSkew || !errors.Is(err, ErrGSSAPIRefused) {
		t.Errorf("skewed client: %+v, %v", l, err)
	}
}
