package proxy

import (
	"io"
	"strings"
	"testing"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/shaping"
)

// TestMyUsageLogin: GET /my-usage on the proxy port asks for the proxy's
// login with a 401 (not a 407: it is no proxy request) and serves the user's
// page only with the right password; a page without logins configured is not
// there. (auth.require_tls: TestMyUsageInChromium, which has a TLS listener.)
func TestMyUsageLogin(t *testing.T) {
	page := func(h *harness, method, auth string) (int, string, map[string]string) {
		t.Helper()
		req := method + " /my-usage HTTP/1.1\r\nHost: proxy\r\n"
		if auth != "" {
			req += "Authorization: " + auth + "\r\n"
		}
		resp := roundTrip(t, h.addr, req+"\r\n")
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fields := map[string]string{}
		for k := range resp.Header {
			fields[k] = resp.Header.Get(k)
		}
		return resp.StatusCode, string(b), fields
	}
	sh := shaping.NewRegistry(configs.Shaping{DefaultGroup: "students",
		Groups: map[string]configs.Limit{"students": {Download: 2_000_000}}})
	h := newHarness(t, "", withShaper(sh))
	for _, tc := range []struct {
		name, method, auth string
		status             int
		body, field, value string
	}{
		{"no credentials", "GET", "", 401, "log in", "Www-Authenticate", `Basic realm="sockshaper", charset="UTF-8"`},
		{"wrong password", "GET", basic("alice", "wrong"), 401, "log in", "Www-Authenticate", `Basic realm="sockshaper", charset="UTF-8"`},
		{"unreadable", "GET", "Basic !!!", 401, "log in", "Www-Authenticate", `Basic realm="sockshaper", charset="UTF-8"`},
		{"right password", "GET", basic("alice", testPassword), 200, `<dd id="user">alice</dd>`, "Cache-Control", "no-store"},
		{"HEAD", "HEAD", basic("alice", testPassword), 200, "", "Content-Type", "text/html; charset=utf-8"},
		{"POST", "POST", basic("alice", testPassword), 404, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, fields := page(h, tc.method, tc.auth)
			if status != tc.status || !strings.Contains(body, tc.body) || tc.field != "" && fields[tc.field] != tc.value {
				t.Errorf("%s %s: %d %v\n%s", tc.method, tc.auth, status, fields, body)
			}
			if status == 200 && (!strings.Contains(fields["Content-Security-Policy"], "default-src 'none'") ||
				tc.method == "GET" && !strings.Contains(body, "16.0 Mbit/s down")) {
				t.Errorf("page: %v\n%s", fields, body)
			}
			if status != 200 && strings.Contains(body, "alice") {
				t.Errorf("a refused request got data: %s", body)
			}
		})
	}
	waitFor(t, "the page's sessions", func() bool {
		return h.rec.get("http: rejected none other ok") == 2 && h.rec.get("http: rejected none other auth_required") == 1 &&
			h.rec.get("http: rejected none other auth_failed") == 2
	})
	if n := h.rec.get("auth failed"); n != 1 {
		t.Errorf("failed logins = %d, want 1 (the wrong password)", n)
	}

	open := newHarness(t, "auth: {users_file: \"\"}")
	if status, body, _ := page(open, "GET", ""); status != 404 || !strings.Contains(body, "needs password logins") {
		t.Errorf("without logins: %d %s", status, body)
	}
}
