package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// The embedded skype class (from SKYPE.md) classifies by the name a client asks for;
// the name resolves, through the proxy's resolver, to a local target.
func TestSkypeNameCountedAsSkype(t *testing.T) {
	local := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	h := newHarness(t, "", withResolver(staticResolver{
		"teams.microsoft.com": local,
		"edge.skype.com":      local,
		"notskype.com":        local,
	}))
	target := startTarget(t, echo)
	_, port := splitHostPort(t, target)
	for _, tc := range []struct{ name, app string }{
		{"teams.microsoft.com", "skype"},
		{"edge.skype.com", "skype"},
		{"notskype.com", "other"},
	} {
		assertEcho(t, h.addr, "alice", fmt.Sprintf("%s:%d", tc.name, port))
		waitFor(t, tc.name+" counted as "+tc.app, func() bool {
			return h.rec.get("closed connect "+tc.app+" ok") >= 1
		})
	}
	if got := h.rec.get("opened connect skype"); got != 2 {
		t.Errorf("skype sessions opened = %d, want 2", got)
	}
	waitFor(t, "skype bytes", func() bool { return h.rec.get("bytes skype download tcp") == 10 })
}

// A CONNECT to a bare address is classified by the TLS server name in the client's
// first bytes, and those bytes still reach the server unchanged.
func TestConnectByAddressClassifiedBySNI(t *testing.T) {
	web := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls ok")
	}))
	defer web.Close()
	_, port := splitHostPort(t, web.Listener.Addr().String())
	h := newHarness(t, fmt.Sprintf("apps: {video: {domains: [video.campus.test], ports: [tcp/%d]}}\n", port))
	client := &http.Client{Transport: &http.Transport{
		DialContext: dialViaProxy(t, h.addr),
		TLSClientConfig: &tls.Config{
			ServerName:         "video.campus.test",
			InsecureSkipVerify: true, // the test server's certificate names example.com
		},
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + web.Listener.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "tls ok" {
		t.Fatalf("body %q", body)
	}
	client.CloseIdleConnections()
	waitFor(t, "session classified as video", func() bool { return h.rec.get("closed connect video ok") == 1 })
}
