package auth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// namedStub is a stub verifier with a naming.
type namedStub struct {
	*stubVerifier
	name func(string) (string, bool)
}

func (n namedStub) UserName(user string) (string, bool) { return n.name(user) }

// entryStub is a directory stand-in: every spelling of alice that, without
// spaces and case, is "alice" finds her one entry; tries counts the passwords
// tried on it.
type entryStub struct {
	*stubVerifier
	tries atomic.Int64
}

func (e *entryStub) VerifyEntry(ctx context.Context, user, password string, admit func(string) bool) (Identity, Verdict, error) {
	if strings.ToLower(strings.ReplaceAll(user, " ", "")) != "alice" {
		return Identity{}, Rejected, nil
	}
	if admit != nil && !admit("UID=alice,OU=people") {
		return Identity{}, Rejected, nil
	}
	e.tries.Add(1)
	return e.Verify(ctx, "alice", password)
}

// spellings returns n spellings of alice: case and surrounding spaces, and with
// inner, inner spaces too.
func spellings(n int, inner bool) []string {
	s := make([]string, n)
	for i := range s {
		b := []byte("alice")
		for j := range b {
			if i>>j&1 == 1 {
				b[j] -= 'a' - 'A'
			}
		}
		s[i] = strings.Repeat(" ", i/32) + string(b) + strings.Repeat(" ", i%3)
		if inner {
			s[i] = s[i][:2+i/32] + strings.Repeat(" ", 1+i%4) + s[i][2+i/32:]
		}
	}
	return s
}

// guessAll runs one login per name at once, each with its own wrong password,
// and returns how many ended with each result.
func guessAll(a *Authenticator, names []string) map[string]int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	got := map[string]int{}
	for i, n := range names {
		wg.Go(func() {
			r := a.Login(context.Background(), client, n, fmt.Sprint("guess", i)).Result
			mu.Lock()
			got[r]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return got
}

// TestNameSpellingsShareTheirCount: with a folding verifier, 100 spellings of
// alice at once from one address are one name: her allowance (3) bounds the
// checks, and a right password verified as "alice" is in the cache for "ALICE ".
func TestNameSpellingsShareTheirCount(t *testing.T) {
	g := NewGate(GateOptions{Throttle: allowance(3, 1000), Workers: 4})
	closeGate(t, g)
	v := &stubVerifier{passwords: map[string]string{"alice": "wonderland", "bob": "builder"}}
	a := g.Authenticator(namedStub{v, func(u string) (string, bool) { return directoryName(u, true) }}, time.Minute)
	got := guessAll(a, spellings(100, false))
	if v.calls.Load() > 3 || got[ResultFailed] > 3 || got[ResultThrottled] < 97 {
		t.Errorf("100 spellings of alice: %d checks, results %v; want at most her allowance, 3", v.calls.Load(), got)
	}
	if out := a.Login(context.Background(), client2, "bob", "builder"); out.Result != ResultOK {
		t.Fatalf("bob: %+v", out)
	}
	calls := v.calls.Load()
	if out := a.Login(context.Background(), client2, " BOB", "builder"); out.Result != ResultOK || v.calls.Load() != calls {
		t.Errorf("\" BOB\" after bob: %+v after %d more checks; want ok from the cache", out, v.calls.Load()-calls)
	}
}

// TestNameThatNamesNobodyIsAFailure: a name the verifier says cannot name an
// account (the users file's " alice") fails without a check, padded like a
// rejection, and counts as a failure of that name.
func TestNameThatNamesNobodyIsAFailure(t *testing.T) {
	g := newTestGate(nil, 1)
	closeGate(t, g)
	v := &stubVerifier{passwords: map[string]string{"alice": "wonderland"}}
	a := g.Authenticator(struct {
		flooredVerifier
		UserNamer
	}{flooredVerifier{v, 30 * time.Millisecond}, namedStub{v, exactName}}, time.Minute)
	start := time.Now()
	if out := a.Login(context.Background(), client, " alice", "wonderland"); out.Result != ResultFailed {
		t.Fatalf("\" alice\": %+v, want failed", out)
	}
	if took := time.Since(start); took < 30*time.Millisecond || v.calls.Load() != 0 {
		t.Errorf("\" alice\" answered in %v after %d checks; want the 30ms floor, no check", took, v.calls.Load())
	}
	if tl := g.throttle.pairs[pairOf("192.0.2.10", " alice")]; tl == nil || tl.failures != 1 || tl.pending != 0 {
		t.Errorf("\" alice\": tally %+v, want one failure", tl)
	}
}

// TestEntrySharesTheCount: spellings the naming keeps apart but that reach one
// entry share the entry's allowance: 100 of them at once try at most 3
// passwords on it, and the refused ones are padded like rejections (an unknown
// user's spellings have no entry to refuse them, and must look the same). The
// right password is then refused there too (the entry is locked from that
// address), and accepted from another.
func TestEntrySharesTheCount(t *testing.T) {
	g := NewGate(GateOptions{Throttle: allowance(3, 1000), Workers: 4, QueuePerAddress: 128})
	closeGate(t, g)
	e := &entryStub{stubVerifier: &stubVerifier{passwords: map[string]string{"alice": "wonderland"}}}
	a := g.Authenticator(struct {
		EntryVerifier
		FailureFloorer
	}{e, flooredVerifier{e.stubVerifier, 20 * time.Millisecond}}, 0)
	start := time.Now()
	got := guessAll(a, spellings(100, true))
	if e.tries.Load() > 3 || got[ResultFailed]+got[ResultThrottled] != 100 {
		t.Errorf("100 spellings: %d passwords tried on the entry, results %v; want at most 3 tried", e.tries.Load(), got)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("the refusals took %v; want the 20ms floor", took)
	}
	if out := a.Login(context.Background(), client, "aLiCe", "wonderland"); out.Result == ResultOK {
		t.Error("the right password got in from the address that spent the entry's allowance")
	}
	if out := a.Login(context.Background(), client2, "ALICE", "wonderland"); out.Result != ResultOK {
		t.Errorf("the right password from another address: %+v", out)
	}
	if tl := g.throttle.pairs[pair{addr: addrKey(client), user: "uid=alice,ou=people", entry: true}]; tl == nil || tl.failures != 3 || tl.pending != 0 {
		t.Errorf("the entry's tally %+v; want 3 failures under its lower-cased DN, nothing pending", tl)
	}
}
