package proxy

import (
	"strings"
	"testing"
)

// TestHTTPChallengeIsNoFailure: what a browser does (a request without
// credentials, the 407, the request again with them) is one auth_required
// and one ok, never auth_failed; a wrong password stays auth_failed;
// credentials that cannot be read are auth_failed too. Challenges by the
// hundred, past the throttle's allowance of failures from one address, never
// throttle the right password.
func TestHTTPChallengeIsNoFailure(t *testing.T) {
	h := newHarness(t, "auth: {throttle: {failures_per_user: 3, failures_per_address: 5}}")
	plain := origin(t, false)
	get := "GET " + plain.URL + "/hello HTTP/1.1\r\nHost: x\r\n"
	status := func(auth string) int {
		t.Helper()
		req := get
		if auth != "" {
			req += "Proxy-Authorization: " + auth + "\r\n"
		}
		resp := roundTrip(t, h.addr, req+"\r\n")
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status(""); s != 407 {
		t.Fatalf("without credentials: %d, want 407", s)
	}
	if s := status(basic("alice", testPassword)); s != 200 {
		t.Fatalf("with credentials after the challenge: %d, want 200", s)
	}
	waitFor(t, "the browser's two sessions", func() bool {
		return h.rec.get("http: rejected request other auth_required") == 1 && h.rec.get("http: closed request other ok") == 1
	})
	if n := h.rec.get("http: rejected request other auth_failed"); n != 0 {
		t.Errorf("a browser's login: %d auth_failed sessions, want 0", n)
	}
	for range 50 { // ten times the address's allowance of failures
		if s := status(""); s != 407 {
			t.Fatalf("without credentials: %d, want 407", s)
		}
	}
	if s := status(basic("alice", testPassword)); s != 200 {
		t.Fatalf("right password after 50 challenges: %d, want 200 (challenges are no failures)", s)
	}
	if n := h.rec.get("auth throttled") + h.rec.get("auth failed"); n != 0 {
		t.Errorf("challenges counted as %d failed or throttled logins", n)
	}
	if s := status(basic("alice", "wrong")); s != 407 {
		t.Fatalf("wrong password: %d, want 407", s)
	}
	if s := status("Basic !!!not-base64"); s != 407 {
		t.Fatalf("malformed credentials: %d, want 407", s)
	}
	waitFor(t, "the failed logins", func() bool { return h.rec.get("http: rejected request other auth_failed") == 2 })
	if n := h.rec.get("http: rejected request other auth_required"); n != 51 {
		t.Errorf("auth_required sessions = %d, want 51", n)
	}
	if n := h.rec.get("auth failed"); n != 1 {
		t.Errorf("failed logins = %d, want 1 (the wrong password; a malformed value checks none)", n)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "level=DEBUG msg=\"credentials required\"") ||
		strings.Contains(logs, "level=WARN") {
		t.Errorf("challenges want debug lines, no warning:\n%s", logs)
	}
}
