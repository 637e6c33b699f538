package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestRejectionsArePaddedToTheFloor: a rejection that took less than the
// verifier's floor is held until the floor; one that took longer is not held more.
func TestRejectionsArePaddedToTheFloor(t *testing.T) {
	g := newTestGate(nil, 1)
	closeGate(t, g)
	const floor = 60 * time.Millisecond
	quick := g.Authenticator(flooredVerifier{&stubVerifier{}, floor}, 0)
	start := time.Now()
	if out := quick.Login(context.Background(), client, "nobody", "x"); out.Result != ResultFailed {
		t.Fatal(out)
	}
	if d := time.Since(start); d < floor {
		t.Errorf("an instant rejection answered after %v, want at least the floor %v", d, floor)
	}
	// Measured from when the verifier returned, so that a loaded machine's
	// slower sleep does not count as padding.
	slow := clockedVerifier{flooredVerifier{&stubVerifier{took: 2 * floor}, floor}, make(chan time.Time, 1)}
	start = time.Now()
	g.Authenticator(slow, 0).Login(context.Background(), client2, "nobody", "x")
	returned := <-slow.returned
	if d, after := time.Since(start), time.Since(returned); d < 2*floor || after > floor*3/4 {
		t.Errorf("a rejection that took %v answered %v after the verifier returned: padded beyond its own time",
			returned.Sub(start), after)
	}
	ok := g.Authenticator(flooredVerifier{&stubVerifier{passwords: map[string]string{"a": "b"}}, time.Hour}, 0)
	done := make(chan Outcome)
	go func() { done <- ok.Login(context.Background(), client2, "a", "b") }()
	select {
	case out := <-done:
		if out.Result != ResultOK {
			t.Errorf("%+v", out)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a right password was padded")
	}
}

// clockedVerifier records when each Verify returned.
type clockedVerifier struct {
	flooredVerifier
	returned chan time.Time
}

func (c clockedVerifier) Verify(ctx context.Context, user, password string) (Identity, Verdict, error) {
	id, v, err := c.flooredVerifier.Verify(ctx, user, password)
	c.returned <- time.Now()
	return id, v, err
}

// TestWrongPasswordTimeDoesNotDependOnTheHashCost: a users file with a cost-4 and
// a cost-7 user. A wrong password for the cheap user and an unknown user take
// the same time (the medians within a factor of 2; unpadded they differ 8 times).
func TestWrongPasswordTimeDoesNotDependOnTheHashCost(t *testing.T) {
	var file strings.Builder
	for user, cost := range map[string]int{"cheap": 4, "dear": 7} {
		hash, err := bcrypt.GenerateFromPassword([]byte("right"), cost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&file, "%s:%s\n", user, hash)
	}
	users, err := ParseUsersFile(strings.NewReader(file.String()), "users")
	if err != nil {
		t.Fatal(err)
	}
	g := NewGate(GateOptions{Throttle: allowance(100, 1000), Workers: 1})
	closeGate(t, g)
	a := g.Authenticator(users, 0)
	timed := func(user string) time.Duration {
		start := time.Now()
		if out := a.Login(context.Background(), client, user, "wrong"); out.Result != ResultFailed {
			t.Fatalf("%s: %+v", user, out)
		}
		return time.Since(start)
	}
	var cheap, unknown []time.Duration
	for i := range 7 {
		cheap = append(cheap, timed("cheap"))
		unknown = append(unknown, timed(fmt.Sprint("nobody", i)))
	}
	mc, mu := median(cheap), median(unknown)
	t.Logf("median wrong password for the cost-4 user %v, unknown user %v (floor %v)", mc, mu, users.FailureFloor())
	if diff := max(mc, mu) - min(mc, mu); diff > max(mc, mu)/2 {
		t.Errorf("medians differ by %v: cost-4 user %v, unknown user %v", diff, mc, mu)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
