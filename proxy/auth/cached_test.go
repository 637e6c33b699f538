package auth

import (
	"context"
	"testing"
	"time"
)

// Cached answers what Login would answer, only when no wait is needed: a
// verified login from the cache, a throttled pair; a miss, a wrong password
// or an unknown name is left to Login, uncounted, so that a client learns
// nothing from hanging up on it.
func TestCachedAnswersOnlyWithoutAWait(t *testing.T) {
	g := NewGate(GateOptions{Throttle: allowance(2, 100), Workers: 1})
	closeGate(t, g)
	v := &stubVerifier{passwords: map[string]string{"alice": "wonderland", "bob": "builder"}}
	a := g.Authenticator(v, time.Minute)
	ctx := context.Background()
	if _, ok := a.Cached(client, "alice", "wonderland"); ok {
		t.Fatal("a login never verified was answered from the cache")
	}
	if got := a.Login(ctx, client, "alice", "wonderland").Result; got != ResultOK {
		t.Fatalf("Login: %s", got)
	}
	calls := v.calls.Load()
	tests := []struct {
		name, user, password string
		want                 string // "" : not answered at once
	}{
		{"verified", "alice", "wonderland", ResultOK},
		{"wrong password", "alice", "guess", ""},
		{"unknown name", "mallory", "x", ""},
		{"never verified", "bob", "builder", ""},
	}
	for _, tt := range tests {
		out, ok := a.Cached(client, tt.user, tt.password)
		if got := map[bool]string{true: out.Result}[ok]; got != tt.want {
			t.Errorf("%s: answered %q (ok %v), want %q", tt.name, out.Result, ok, tt.want)
		}
		if tt.want == ResultOK && out.Identity.User != tt.user {
			t.Errorf("%s: identity %q, want %q", tt.name, out.Identity.User, tt.user)
		}
	}
	if n := v.calls.Load(); n != calls {
		t.Errorf("Cached ran %d checks, want none", n-calls)
	}
	// Two failures of bob from the address use up the allowance: bob is
	// throttled, at once, right password or not.
	for range 2 {
		a.Login(ctx, client, "bob", "wrong")
	}
	if out, ok := a.Cached(client, "bob", "builder"); !ok || out.Result != ResultThrottled {
		t.Errorf("throttled pair: %q (ok %v), want %s", out.Result, ok, ResultThrottled)
	}
	if out, ok := a.Cached(client, "alice", "wonderland"); !ok || out.Result != ResultOK {
		t.Errorf("alice after bob's failures: %q (ok %v), want ok", out.Result, ok)
	}
}
