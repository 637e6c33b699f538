package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Tests that kill mutants gremlins found alive in this package (see
// docs/testing.md): each pins a behaviour no other test checked.

// TestCacheStaysBounded: the login cache never holds more than maxCached
// entries, however many distinct live logins arrive (a guessing client's
// successes cannot grow it without bound).
func TestCacheStaysBounded(t *testing.T) {
	c := newCache(time.Hour, 0, time.Now)
	for i := range maxCached + 10 {
		c.put(c.keyOf(fmt.Sprint("user", i), "pw"), Identity{User: "u"})
		if i == maxCached-1 && c.size() != maxCached {
			t.Fatalf("%d entries after %d puts, want all of them below the bound", c.size(), maxCached)
		}
		if i >= maxCached-1 && c.size() > maxCached {
			t.Fatalf("cache holds %d entries after %d puts, above maxCached (%d)", c.size(), i+1, maxCached)
		}
	}
}

// TestBcryptLeavesACoreFree: the users file's bcrypt checks and the gate's
// workers use one core fewer than GOMAXPROCS (at least one), so that logins
// never take every core from the sessions.
func TestBcryptLeavesACoreFree(t *testing.T) {
	want := max(1, runtime.GOMAXPROCS(0)-1)
	if c := NewCombined(nil, nil); cap(c.cpu) != want {
		t.Errorf("Combined runs %d checks at once, want %d", cap(c.cpu), want)
	}
	if g := NewGate(GateOptions{}); g.workers != want || g.pool.workers != want {
		t.Errorf("Gate has %d workers (pool %d), want %d", g.workers, g.pool.workers, want)
	}
}

// TestGateDefaultsAndSettings: zero options take their defaults, set ones are
// kept; the queue's floor is queuePerWorker per worker.
func TestGateDefaultsAndSettings(t *testing.T) {
	g := NewGate(GateOptions{Workers: 3})
	if g.pool.waitBudget != defaultWaitBudget || g.pool.minTotal != 3*queuePerWorker {
		t.Errorf("defaults: wait budget %v, queue floor %d; want %v and %d", g.pool.waitBudget, g.pool.minTotal, defaultWaitBudget, 3*queuePerWorker)
	}
	g = NewGate(GateOptions{Workers: 3, WaitBudget: 2 * time.Second})
	if g.pool.waitBudget != 2*time.Second {
		t.Errorf("WaitBudget 2s: %v", g.pool.waitBudget)
	}
}

// TestAnsweredTellsResultsFromNetworkErrors: a result the directory sent keeps
// the connection; go-ldap's network error codes (ErrorNetwork and above) do not.
func TestAnsweredTellsResultsFromNetworkErrors(t *testing.T) {
	for _, tc := range []struct {
		code uint16
		want bool
	}{
		{ldap.LDAPResultInvalidCredentials, true},
		{ldap.ErrorNetwork - 1, true},
		{ldap.ErrorNetwork, false},
		{ldap.ErrorNetwork + 1, false},
	} {
		if got := answered(&ldap.Error{ResultCode: tc.code}); got != tc.want {
			t.Errorf("answered(result %d) = %v, want %v", tc.code, got, tc.want)
		}
	}
}

// TestGroupBases: the groups' search base is their deepest common ancestor,
// also when one group's DN is an ancestor of another's.
func TestGroupBases(t *testing.T) {
	group := func(dn string) dirGroup {
		parsed, err := ldap.ParseDN(dn)
		if err != nil {
			t.Fatal(err)
		}
		return dirGroup{dn: parsed, raw: dn}
	}
	for _, tc := range []struct {
		dns  []string
		want string
	}{
		{[]string{"cn=staff,ou=groups,dc=campus,dc=example", "cn=students,ou=groups,dc=campus,dc=example"}, "ou=groups,dc=campus,dc=example"},
		{[]string{"ou=groups,dc=campus,dc=example", "cn=staff,ou=groups,dc=campus,dc=example"}, "ou=groups,dc=campus,dc=example"},
		{[]string{"cn=staff,ou=groups,dc=campus,dc=example", "ou=groups,dc=campus,dc=example"}, "ou=groups,dc=campus,dc=example"},
		{[]string{"cn=a,dc=one", "cn=b,dc=two"}, "cn=a,dc=one|cn=b,dc=two"},
	} {
		var groups []dirGroup
		for _, dn := range tc.dns {
			groups = append(groups, group(dn))
		}
		if got := strings.Join(groupBases(groups), "|"); got != tc.want {
			t.Errorf("groupBases(%v) = %q, want %q", tc.dns, got, tc.want)
		}
	}
}

// TestOutageLogCountsSuppressedFailures: the next line of an outage says how
// many failures it did not log since the last one.
func TestOutageLogCountsSuppressedFailures(t *testing.T) {
	var logs strings.Builder
	o := &outageLog{log: slog.New(slog.NewTextHandler(&logs, nil)), url: "ldap://dir", interval: 200 * time.Millisecond}
	down := &ldap.Error{ResultCode: ldap.ErrorNetwork, Err: errors.New("connection refused")}
	for range 4 {
		o.failed(down)
	}
	time.Sleep(250 * time.Millisecond)
	o.failed(down)
	if lines := strings.Count(logs.String(), "directory unreachable"); lines != 2 || !strings.Contains(logs.String(), "failures_not_logged=3") {
		t.Errorf("%d lines, want 2, the second with failures_not_logged=3:\n%s", lines, logs.String())
	}
}

// TestFailureFloorStartsFromTheFirstCheck: the failure floor's average starts
// at the first check's time, with half of it as the deviation, and then moves
// by an eighth (average) and a quarter (deviation) of each difference.
func TestFailureFloorStartsFromTheFirstCheck(t *testing.T) {
	var f floor
	f.observe(80 * time.Millisecond)
	if f.avg != 80*time.Millisecond || f.dev != 40*time.Millisecond {
		t.Errorf("after one check of 80ms: average %v, deviation %v; want 80ms and 40ms", f.avg, f.dev)
	}
	f.observe(160 * time.Millisecond)
	if f.avg != 90*time.Millisecond || f.dev != 50*time.Millisecond {
		t.Errorf("after a second of 160ms: average %v, deviation %v; want 90ms and 50ms", f.avg, f.dev)
	}
	f.observe(10 * time.Millisecond) // 80ms below: the deviation grows by a quarter of 80-50
	if f.avg != 80*time.Millisecond || f.dev != 57500*time.Microsecond {
		t.Errorf("after a third of 10ms: average %v, deviation %v; want 80ms and 57.5ms", f.avg, f.dev)
	}
}

// TestPoolSettingsFollowWorkersAndChecks: more workers raise the queue's floor
// by queuePerWorker each, and the average check time starts at the first check
// and moves by a sixteenth of each difference.
func TestPoolSettingsFollowWorkersAndChecks(t *testing.T) {
	p := newPool(1, 4, 0, queuePerWorker, time.Second)
	p.setWorkers(4)
	if p.minTotal != 4*queuePerWorker {
		t.Errorf("4 workers: queue floor %d, want %d", p.minTotal, 4*queuePerWorker)
	}
	p.observe(160 * time.Millisecond)
	p.observe(320 * time.Millisecond)
	if p.avgCheck != 170*time.Millisecond {
		t.Errorf("average check %v after 160ms and 320ms, want 170ms", p.avgCheck)
	}
}
