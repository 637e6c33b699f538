package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/internal/slapdtest"
)

// TestDirectoryOutage stops the directory mid-run: logins are unavailable, not
// failed, and never throttled; a user verified shortly before keeps getting in
// within the stale window and not after it; one log line says the directory is
// unreachable, one that it is back.
func TestDirectoryOutage(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	cfg := ldapConfig(t, s)
	cfg.StaleWindow = time.Minute
	var logs logBuffer
	rec := newCountingRecorder()
	d := newTestDirectory(t, cfg, DirectoryOptions{Logger: logs.logger(), Recorder: rec, OutageLogInterval: time.Hour})
	clock := newFakeClock()
	g := newTestGate(clock, 0) // 3 failures of a user, 5 of an address
	closeGate(t, g)
	a := g.Authenticator(d, time.Minute)
	login := func(user, password string) Outcome {
		return a.Login(context.Background(), client, user, password)
	}
	if out := login("alice", slapdtest.Password("alice")); out.Result != ResultOK || out.Identity.Group != "staff" {
		t.Fatalf("alice before the outage: %+v", out)
	}

	s.Stop()
	if out := login("alice", slapdtest.Password("alice")); out.Result != ResultOK || out.Stale {
		t.Errorf("alice from the cache: %+v; want ok, not stale", out)
	}
	clock.add(90 * time.Second) // past cache_ttl, within the stale window
	out := login("alice", slapdtest.Password("alice"))
	if out.Result != ResultOK || !out.Stale || out.Identity.Group != "staff" || ErrorKind(out.Err) != KindUnreachable {
		t.Errorf("alice in the stale window: %+v; want ok, stale, staff, the unreachable error", out)
	}
	if out := login("alice", "wrong"); out.Result != ResultUnavailable {
		t.Errorf("alice with a wrong password in the outage: %v; want unavailable", out.Result)
	}
	for i := range 10 { // twice the address's allowance
		if out := login("bob", "wrong"); out.Result != ResultUnavailable || ErrorKind(out.Err) != KindUnreachable {
			t.Fatalf("bob's login %d in the outage: %v %v; want unavailable (unreachable)", i, out.Result, out.Err)
		}
	}
	if g.throttle.blocked(pair{addr: addrKey(client), user: "bob"}) {
		t.Error("unavailable logins fed the throttle")
	}
	clock.add(31 * time.Second) // past cache_ttl + stale_window
	if out := login("alice", slapdtest.Password("alice")); out.Result != ResultUnavailable {
		t.Errorf("alice after the stale window: %v; want unavailable", out.Result)
	}
	if n := logs.count("directory unreachable"); n != 1 {
		t.Errorf("%d 'directory unreachable' lines for 13 failed logins in one interval; want 1", n)
	}

	s.Restart()
	if out := login("bob", slapdtest.Password("bob")); out.Result != ResultOK {
		t.Errorf("bob after the directory came back: %v %v", out.Result, out.Err)
	}
	if n := logs.count("directory reachable again"); n != 1 {
		t.Errorf("%d 'directory reachable again' lines; want 1", n)
	}
	if rec.get(rec.errors, KindUnreachable) < 12 {
		t.Errorf("unreachable errors counted: %d; want one per failed login", rec.get(rec.errors, KindUnreachable))
	}
}

// TestDirectoryOutageLogInterval: the outage line comes once per interval, not
// per attempt.
func TestDirectoryOutageLogInterval(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	var logs logBuffer
	d := newTestDirectory(t, ldapConfig(t, s), DirectoryOptions{Logger: logs.logger(), OutageLogInterval: 300 * time.Millisecond})
	s.Stop()
	start := time.Now()
	for range 20 {
		d.Verify(context.Background(), "alice", slapdtest.Password("alice"))
	}
	if n := logs.count("directory unreachable"); n != 1 || time.Since(start) > 300*time.Millisecond {
		t.Fatalf("%d lines for 20 failures in %v; want 1 (within the 300ms interval)", n, time.Since(start))
	}
	time.Sleep(350 * time.Millisecond)
	d.Verify(context.Background(), "alice", slapdtest.Password("alice"))
	if n := logs.count("directory unreachable"); n != 2 {
		t.Errorf("%d lines after the interval; want 2", n)
	}
}

// TestDirectoryTimeout pauses the directory (it accepts connections but answers
// nothing): a login gives up after the timeout as unavailable, on a pooled
// connection and on a new one, and the next works once the directory answers.
func TestDirectoryTimeout(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	cfg := ldapConfig(t, s)
	cfg.Timeout = 400 * time.Millisecond
	rec := newCountingRecorder()
	pooled := newTestDirectory(t, cfg, DirectoryOptions{Recorder: rec})
	if _, v, err := pooled.Verify(context.Background(), "alice", slapdtest.Password("alice")); v != OK {
		t.Fatalf("before the pause: %v %v", v, err)
	}
	fresh := newTestDirectory(t, cfg, DirectoryOptions{Recorder: rec})
	s.Pause()
	for name, d := range map[string]*Directory{"pooled connection": pooled, "new connection": fresh} {
		start := time.Now()
		_, v, err := d.Verify(context.Background(), "alice", slapdtest.Password("alice"))
		took := time.Since(start)
		if v != Unavailable || ErrorKind(err) != KindTimeout {
			t.Errorf("%s: %v, %v (kind %q); want unavailable, timeout", name, v, err, ErrorKind(err))
		}
		if took < 350*time.Millisecond || took > 2*time.Second {
			t.Errorf("%s: gave up after %v; want about the 400ms timeout", name, took)
		}
	}
	if rec.get(rec.errors, KindTimeout) != 2 {
		t.Errorf("timeouts counted: %d, want 2", rec.get(rec.errors, KindTimeout))
	}
	s.Resume()
	// slapd first works through what queued while it was stopped; on a loaded
	// machine that may take longer than one 400ms login.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, v, err := pooled.Verify(context.Background(), "alice", slapdtest.Password("alice"))
		if v == OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the pause: %v %v", v, err)
		}
	}
}

// tunedVerifier is a stub with a Tuning, to show the stale window works for any
// verifier that answers Unavailable.
type tunedVerifier struct {
	*stubVerifier
	tuning Tuning
}

func (v tunedVerifier) Tuning() Tuning { return v.tuning }

func TestStaleWindowAnyVerifier(t *testing.T) {
	clock := newFakeClock()
	g := newTestGate(clock, 1)
	closeGate(t, g)
	stub := &stubVerifier{passwords: map[string]string{"alice": "wonderland"}}
	for _, tc := range []struct {
		stale time.Duration
		after time.Duration
		want  string
	}{
		{0, 61 * time.Second, ResultUnavailable}, // off by default
		{time.Minute, 61 * time.Second, ResultOK},
		{time.Minute, 119 * time.Second, ResultOK},
		{time.Minute, 120 * time.Second, ResultUnavailable},
	} {
		stub.unavailable = false
		a := g.Authenticator(tunedVerifier{stub, Tuning{StaleTTL: tc.stale}}, time.Minute)
		if out := a.Login(context.Background(), client, "alice", "wonderland"); out.Result != ResultOK {
			t.Fatalf("first login: %v", out.Result)
		}
		stub.unavailable = true
		clock.add(tc.after)
		if out := a.Login(context.Background(), client, "alice", "wonderland"); out.Result != tc.want {
			t.Errorf("stale window %v, %v after the login: %v; want %v", tc.stale, tc.after, out.Result, tc.want)
		}
		if out := a.Login(context.Background(), client, "alice", "other"); out.Result != ResultUnavailable {
			t.Errorf("another password in the outage: %v; want unavailable", out.Result)
		}
	}
}

func TestNewDirectoryFileErrors(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	for _, tc := range []struct {
		name   string
		mutate func(*configs.LDAP)
		want   string
	}{
		{"missing secret", func(c *configs.LDAP) { c.BindPasswordFile += ".missing" }, "auth.ldap.bind_password_file: open "},
		{"missing CA", func(c *configs.LDAP) { c.CAFile += ".missing" }, "auth.ldap.ca_file: open "},
		{"CA not PEM", func(c *configs.LDAP) { c.CAFile = c.BindPasswordFile }, "holds no PEM certificate"},
	} {
		cfg := ldapConfig(t, s)
		tc.mutate(&cfg)
		_, err := NewDirectory(cfg, DirectoryOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), slapdtest.ServicePassword) {
			t.Errorf("%s: %v; want an error containing %q, without the password", tc.name, err, tc.want)
		}
	}
}

// TestDirectoryRemovedUser: a user deleted from the directory keeps the cached
// login until cache_ttl, then is refused, even with a stale window (the directory
// answered, so nothing is stale).
func TestDirectoryRemovedUser(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	cfg := ldapConfig(t, s)
	cfg.StaleWindow = time.Hour
	d := newTestDirectory(t, cfg, DirectoryOptions{})
	clock := newFakeClock()
	g := newTestGate(clock, 0)
	closeGate(t, g)
	a := g.Authenticator(d, time.Minute)
	login := func() string {
		return a.Login(context.Background(), client, "dave", slapdtest.Password("dave")).Result
	}
	if got := login(); got != ResultOK {
		t.Fatalf("dave: %v", got)
	}
	s.Modify("dn: " + slapdtest.UserDN("dave") + "\nchangetype: delete\n")
	if got := login(); got != ResultOK {
		t.Errorf("dave within cache_ttl of his login: %v; want ok from the cache", got)
	}
	clock.add(time.Minute)
	if got := login(); got != ResultFailed {
		t.Errorf("dave after cache_ttl, deleted: %v; want failed", got)
	}
}
