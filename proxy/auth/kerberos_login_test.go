package auth

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ticketStub accepts the tokens "alice", "Alice" and "bob" as those users'
// tickets (with a mutual-authentication reply), and refuses anything else as
// a replay, with the principal named.
type ticketStub struct{}

func (ticketStub) AcceptSPNEGO(token []byte, _ netip.Addr) KerberosLogin {
	switch u := string(token); u {
	case "alice", "Alice", "bob":
		return KerberosLogin{Result: KerberosOK, Identity: Identity{User: u}, Principal: u + "@R",
			Expires: time.Now().Add(time.Hour), Reply: []byte("rep")}
	}
	return KerberosLogin{Result: KerberosReplay, Err: errors.New("seen before"), Principal: "mallory@R"}
}

func (s ticketStub) AcceptGSS(token []byte, client netip.Addr) KerberosLogin {
	return s.AcceptSPNEGO(token, client)
}

// lookupStub is a directory: staff for alice, students for bob, nobody else.
// Its answers wait for hold when set; unavailable makes it answer Unavailable.
type lookupStub struct {
	calls       atomic.Int64
	hold        chan struct{}
	unavailable atomic.Bool
	fold        bool
}

func (l *lookupStub) LookupUser(_ context.Context, user string) (Identity, Verdict, error) {
	l.calls.Add(1)
	if l.hold != nil {
		<-l.hold
	}
	if l.unavailable.Load() {
		return Identity{}, Unavailable, errors.New("directory unreachable")
	}
	switch user {
	case "alice":
		return Identity{User: user, Group: "staff"}, OK, nil
	case "bob":
		return Identity{User: user, Group: "students"}, OK, nil
	}
	return Identity{}, Rejected, nil
}

// foldingLookup is a lookupStub that names users as a directory folding case
// does.
type foldingLookup struct{ *lookupStub }

func (foldingLookup) UserName(user string) (string, bool) { return strings.ToLower(user), user != "" }

func ticketAuthenticator(t *testing.T, passwords Verifier, lookup UserLookup, ttl time.Duration) *Authenticator {
	t.Helper()
	g := NewGate(GateOptions{Throttle: testThrottleSettings(), Workers: 1})
	closeGate(t, g)
	return g.Authenticator(WithTickets(passwords, ticketStub{}, lookup), ttl)
}

// TestLoginTicketResults: a good ticket is the user's identity with its
// reply; without a directory the group is left to shaping; a bad ticket is
// its reason's result; an Authenticator without Kerberos refuses tickets, and
// one without passwords refuses passwords without a check.
func TestLoginTicketResults(t *testing.T) {
	ctx := context.Background()
	a := ticketAuthenticator(t, nil, nil, time.Minute)
	if !a.Tickets() || a.Passwords() {
		t.Fatalf("Kerberos only: Tickets %v Passwords %v", a.Tickets(), a.Passwords())
	}
	out := a.LoginTicket(ctx, client, []byte("alice"), SPNEGO)
	if !out.OK() || out.Result != "kerberos_ok" || out.Identity != (Identity{User: "alice"}) || string(out.Ticket.Reply) != "rep" {
		t.Errorf("alice: %+v", out)
	}
	out = a.LoginTicket(ctx, client, []byte("again"), GSSAPI)
	if out.OK() || out.Result != "kerberos_replay" || out.Ticket.Principal != "mallory@R" || out.Err == nil {
		t.Errorf("replay: %+v", out)
	}
	if out := a.Login(ctx, client, "alice", "pw"); out.Result != ResultFailed {
		t.Errorf("password with no password verifier: %+v", out)
	}
	g := NewGate(GateOptions{Throttle: testThrottleSettings(), Workers: 1})
	closeGate(t, g)
	plain := g.Authenticator(&stubVerifier{passwords: map[string]string{"alice": "pw"}}, time.Minute)
	if plain.Tickets() || !plain.Passwords() {
		t.Errorf("passwords only: Tickets %v Passwords %v", plain.Tickets(), plain.Passwords())
	}
	if out := plain.LoginTicket(ctx, client, []byte("alice"), SPNEGO); out.OK() || out.Ticket.Result != KerberosMechanism {
		t.Errorf("ticket without Kerberos configured: %+v", out)
	}
}

// TestLoginTicketDirectory: the directory is asked once for a user however
// many logins bring their tickets at once, and its answer is remembered for
// the cache's time; a user it does not know is unknown_user, without the
// reply; a directory that folds case names "Alice" alice.
func TestLoginTicketDirectory(t *testing.T) {
	l := &lookupStub{hold: make(chan struct{})}
	a := ticketAuthenticator(t, nil, foldingLookup{l}, time.Minute)
	const logins = 16
	var wg sync.WaitGroup
	outs := make([]TicketOutcome, logins)
	for i := range logins {
		wg.Go(func() { outs[i] = a.LoginTicket(context.Background(), client, []byte("alice"), SPNEGO) })
	}
	for l.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others join the lookup
	close(l.hold)
	wg.Wait()
	for i, out := range outs {
		if !out.OK() || out.Identity != (Identity{User: "alice", Group: "staff"}) {
			t.Fatalf("login %d: %+v", i, out)
		}
	}
	if n := l.calls.Load(); n != 1 {
		t.Errorf("%d concurrent logins of alice made %d lookups; want 1", logins, n)
	}
	if out := a.LoginTicket(context.Background(), client, []byte("Alice"), SPNEGO); !out.OK() || out.Identity.User != "alice" || l.calls.Load() != 1 {
		t.Errorf("Alice, cached under alice: %+v after %d lookups", out, l.calls.Load())
	}
	out := a.LoginTicket(context.Background(), client, []byte("bob"), SPNEGO)
	if !out.OK() || out.Identity.Group != "students" {
		t.Errorf("bob: %+v", out)
	}
	l2 := &lookupStub{}
	a2 := ticketAuthenticator(t, nil, l2, time.Minute)
	type nobody struct{ TicketVerifier }
	a2.tickets = nobody{ticketStub{}}
	out = a2.LoginTicket(context.Background(), client, []byte("Alice"), SPNEGO) // not folded: unknown
	if out.OK() || out.Result != "kerberos_unknown_user" || out.Ticket.Result != KerberosUnknownUser || out.Ticket.Reply != nil {
		t.Errorf("a user the directory does not know: %+v", out)
	}
}

// TestLoginTicketOutage: a directory that cannot answer is not a failed
// login (unavailable), except for a user it answered for less than the stale
// window past the cache's time; a client that leaves while the directory is
// asked is abandoned, and the answer still fills the cache.
func TestLoginTicketOutage(t *testing.T) {
	l := &lookupStub{}
	g := NewGate(GateOptions{Throttle: testThrottleSettings(), Workers: 1})
	closeGate(t, g)
	a := g.Authenticator(WithTickets(tunedVerifier{&stubVerifier{}, Tuning{StaleTTL: time.Hour}}, ticketStub{}, l), 10*time.Millisecond)
	ctx := context.Background()
	if out := a.LoginTicket(ctx, client, []byte("alice"), SPNEGO); !out.OK() {
		t.Fatalf("alice: %+v", out)
	}
	time.Sleep(20 * time.Millisecond) // past the cache's time
	l.unavailable.Store(true)
	if out := a.LoginTicket(ctx, client, []byte("alice"), SPNEGO); !out.OK() || !out.Stale || out.Identity.Group != "staff" {
		t.Errorf("alice during an outage, within the stale window: %+v", out)
	}
	if out := a.LoginTicket(ctx, client, []byte("bob"), SPNEGO); out.OK() || out.Result != ResultUnavailable || out.Err == nil {
		t.Errorf("bob during an outage: %+v", out)
	}
	l.unavailable.Store(false)
	l.hold = make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan TicketOutcome)
	go func() { done <- a.LoginTicket(cctx, client, []byte("bob"), SPNEGO) }()
	for l.calls.Load() < 4 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if out := <-done; out.Result != ResultAbandoned {
		t.Errorf("client gone during the lookup: %+v", out)
	}
	close(l.hold)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, ok := a.lookups.get(a.lookups.keyOf("bob", "")); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lookup of a client that left did not fill the cache")
		}
	}
}

// TestLoginTicketNotThrottled: tickets cannot be guessed, so bad ones do not
// count as failed logins (a client retrying a stale ticket cannot push its
// address over the allowance), and a good one gets in from an address whose
// password failures are used up; it then counts as a verified login of its
// user from there.
func TestLoginTicketNotThrottled(t *testing.T) {
	ctx := context.Background()
	a := ticketAuthenticator(t, &stubVerifier{passwords: map[string]string{"carol": "pw"}}, nil, time.Minute)
	for range 50 {
		a.LoginTicket(ctx, client, []byte("replayed"), SPNEGO)
	}
	if out := a.Login(ctx, client, "carol", "pw"); out.Result != ResultOK {
		t.Errorf("a password login after 50 bad tickets from the address: %+v", out)
	}
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5", "u6"} {
		a.Login(ctx, client2, u, "wrong")
	}
	if out := a.Login(ctx, client2, "alice", "wrong"); out.Result != ResultThrottled {
		t.Fatalf("the address's allowance is not used up: %+v", out)
	}
	if out := a.LoginTicket(ctx, client2, []byte("alice"), SPNEGO); !out.OK() {
		t.Errorf("a ticket from an address over its allowance: %+v", out)
	}
	th := a.gate.throttle
	th.mu.Lock()
	verified := th.recentlyVerified(pairOf(client2.String(), "alice"), th.now())
	th.mu.Unlock()
	if !verified {
		t.Error("a ticket login is not remembered as a verified login of alice from the address")
	}
}

// TestResultsMatchMetrics: every Kerberos result has its auth_attempts_total
// value, and auth.Results lists them after the password logins'.
func TestKerberosAttemptResults(t *testing.T) {
	all := Results()
	for _, r := range KerberosResults() {
		if !strings.HasPrefix(r.Attempt(), "kerberos_") || !containsString(all, r.Attempt()) {
			t.Errorf("%s: %q missing from Results()", r, r.Attempt())
		}
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestNegotiateNTLM: Windows sends raw NTLM under "Negotiate" when it has no
// ticket for the proxy; that is the mechanism refusal, which tells an operator
// to look at the SPN, not a malformed token.
func TestNegotiateNTLM(t *testing.T) {
	token, ok := NegotiateToken("Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==")
	if !ok {
		t.Fatal("the NTLM token does not decode")
	}
	_, _, r, err := decodeNegotiate(token)
	if r != KerberosMechanism || err == nil || !strings.Contains(err.Error(), "NTLM") {
		t.Errorf("raw NTLM: %q, %v; want mechanism, naming NTLM", r, err)
	}
}
