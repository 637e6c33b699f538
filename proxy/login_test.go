package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sockshaper/sockshaper/proxy/auth"
)

// usersFile writes a users file where every user's password is testPassword,
// hashed once at cost (a shared salt saves bcrypt time; the test does not care),
// and returns the auth YAML that points the harness at it.
func usersFile(t testing.TB, cost int, users ...string) string {
	t.Helper()
	costs := map[string]int{}
	for _, u := range users {
		costs[u] = cost
	}
	return usersAtCost(t, costs)
}

// usersAtCost writes a users file with each user's password testPassword hashed at
// the given cost, and returns the auth YAML that points the harness at it, with
// further auth keys ("cache_ttl: 0s") added.
func usersAtCost(t testing.TB, costs map[string]int, auth ...string) string {
	t.Helper()
	var b strings.Builder
	hashes := map[int][]byte{} // one per cost: the tests do not need a salt per user
	for _, u := range slices.Sorted(maps.Keys(costs)) {
		hash, ok := hashes[costs[u]]
		if !ok {
			var err error
			if hash, err = bcrypt.GenerateFromPassword([]byte(testPassword), costs[u]); err != nil {
				t.Fatal(err)
			}
			hashes[costs[u]] = hash
		}
		b.WriteString(u + ":" + string(hash) + "\n")
	}
	path := filepath.Join(t.TempDir(), "users.htpasswd")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return "auth: {" + strings.Join(append([]string{"users_file: " + path}, auth...), ", ") + "}\n"
}

// login connects from source (a 127.x.y.z address, "" for the default), sends a
// greeting and an RFC 1929 login, and returns the server's two replies (4 bytes
// when it answered both) and how long the login took from the greeting's reply.
func login(t testing.TB, proxyAddr, source, user, password string) ([]byte, time.Duration) {
	t.Helper()
	c := dialFrom(t, proxyAddr, source)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(greetUserPass); err != nil {
		t.Error(err)
		return nil, 0
	}
	method := make([]byte, 2)
	if _, err := io.ReadFull(c, method); err != nil {
		return method, 0
	}
	start := time.Now()
	if _, err := c.Write(loginMsg(user, password)); err != nil {
		t.Error(err)
		return nil, 0
	}
	status := make([]byte, 2)
	n, _ := io.ReadFull(c, status)
	return append(method, status[:n]...), time.Since(start)
}

func dialFrom(t testing.TB, proxyAddr, source string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	c, err := d.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	loginOK     = []byte{5, 2, 1, 0}
	loginFailed = []byte{5, 2, 1, 1}
)

// TestConcurrentGuessesFromOneAddressStayWithinTheAllowance: 200 guesses at once
// from one address, each a different password, must not check more passwords than
// the address's allowance of failures (10 per user by default).
func TestConcurrentGuessesFromOneAddressStayWithinTheAllowance(t *testing.T) {
	cfg := loadTestConfig(t, testConfig)
	users := &countingVerifier{Verifier: loadUsers(t, cfg)}
	h := startHarness(t, cfg, users)
	const guesses = 200
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range guesses {
		wg.Go(func() {
			got, _ := login(t, h.addr, "127.0.3.1", "alice", fmt.Sprintf("guess-%d", i))
			if bytes.Equal(got, loginFailed) {
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	if refused.Load() != guesses {
		t.Errorf("%d of %d guesses refused", refused.Load(), guesses)
	}
	// A session counts its login after the client has the answer.
	waitFor(t, "every login counted", func() bool { return h.rec.get("auth failed")+h.rec.get("auth throttled") == guesses })
	checked := users.calls.Load()
	if checked > 10 || h.rec.get("auth failed") != checked {
		t.Errorf("%d concurrent guesses from one address: %d passwords checked, %d failed, want at most the allowance of 10",
			guesses, checked, h.rec.get("auth failed"))
	}
	t.Logf("checked %d, throttled %d", checked, h.rec.get("auth throttled"))
}

// countingVerifier counts the password checks run.
type countingVerifier struct {
	auth.Verifier
	calls atomic.Int64
}

func (c *countingVerifier) Verify(ctx context.Context, user, password string) (auth.Identity, auth.Verdict, error) {
	c.calls.Add(1)
	return c.Verifier.Verify(ctx, user, password)
}

// TestRealLoginWhileGuessing: 40 addresses each send 50 guesses at once (2,000,
// each for another user or password, so no allowance and no shared check stops
// them). Once the proxy has taken every guess in (queued, or refused as busy), a
// real user's first login from another address completes within a second (from
// connect to answer), and
// fewer guesses are checked while it waits than there are workers to check them
// twice over (the old proxy checked hundreds, or all 2,000). Every hash is at cost
// 6, the guessers' targets and the real user's alike: 3.5 ms a check without the
// race detector, 40 ms with it.
func TestRealLoginWhileGuessing(t *testing.T) {
	const cost = 6
	users := []string{"carol", "dave"}
	for i := range 50 {
		users = append(users, fmt.Sprintf("user%02d", i))
	}
	h := newHarness(t, usersFile(t, cost, users...)+"timeouts: {handshake: 30s}\n")
	// The same first login on the idle proxy, for scale: on a machine so loaded
	// that it takes more than a third of a second, the bound is three times it.
	began := time.Now()
	if got, _ := login(t, h.addr, "127.0.5.1", "dave", testPassword); !bytes.Equal(got, loginOK) {
		t.Fatalf("baseline login: %x", got)
	}
	limit := max(time.Second, 3*time.Since(began))

	const addresses, perAddress = 40, 50
	var wg sync.WaitGroup
	var answered atomic.Int64
	start := make(chan struct{})
	var conns []net.Conn
	for a := range addresses {
		for u := range perAddress {
			c := dialFrom(t, h.addr, fmt.Sprintf("127.0.4.%d", a+1))
			conns = append(conns, c)
			wg.Go(func() {
				<-start
				c.Write(cat(greetUserPass, loginMsg(fmt.Sprintf("user%02d", u), fmt.Sprintf("guess-%d", a))))
				got := make([]byte, 4)
				if _, err := io.ReadFull(c, got); err == nil {
					answered.Add(1)
				}
			})
		}
	}
	close(start)
	// Taking 2,000 logins in takes seconds under the race detector on a busy
	// machine: wait longer than waitFor does.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		queued, running := h.srv.gate.Pending()
		if answered.Load()+int64(queued+running) >= addresses*perAddress-2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy took in %d of %d guesses in a minute", answered.Load()+int64(queued+running), addresses*perAddress)
		}
	}
	before := answered.Load()
	began = time.Now()
	got, _ := login(t, h.addr, "127.0.5.1", "carol", testPassword)
	took := time.Since(began)
	checkedMeanwhile, unanswered := answered.Load()-before, addresses*perAddress-answered.Load()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	if !bytes.Equal(got, loginOK) {
		t.Fatalf("real login: %x, want %x", got, loginOK)
	}
	if took > limit {
		t.Errorf("real first login took %v from connect to answer while guessing, want under %v", took, limit)
	}
	if limit := int64(4 * runtime.GOMAXPROCS(0)); checkedMeanwhile > limit {
		t.Errorf("%d guesses were answered while the real login waited, want at most %d", checkedMeanwhile, limit)
	}
	if unanswered == 0 {
		t.Error("every guess was answered before the real login: the test did not load the proxy")
	}
	t.Logf("real login took %v (limit %v) with %d guesses in flight, %d answered meanwhile; failed %d, busy %d, throttled %d",
		took, limit, unanswered, checkedMeanwhile, h.rec.get("auth failed"), h.rec.get("auth busy"), h.rec.get("auth throttled"))
}

// TestOneUsersFailuresSpareOtherUsersAtTheAddress: a NAT address where one user
// failed ten times still lets other users log in, cached or not.
func TestOneUsersFailuresSpareOtherUsersAtTheAddress(t *testing.T) {
	h := newHarness(t, "")
	const nat = "127.0.6.1"
	if got, _ := login(t, h.addr, nat, "alice", testPassword); !bytes.Equal(got, loginOK) {
		t.Fatalf("alice before: %x", got) // now cached
	}
	for i := range 10 {
		login(t, h.addr, nat, "bob", fmt.Sprintf("wrong-%d", i))
	}
	if got, _ := login(t, h.addr, nat, "bob", testPassword); !bytes.Equal(got, loginFailed) {
		t.Errorf("bob after ten failures: %x, want refused", got)
	}
	if got, _ := login(t, h.addr, nat, "alice", testPassword); !bytes.Equal(got, loginOK) {
		t.Errorf("alice's cached password at the NAT address: %x, want %x", got, loginOK)
	}
}

// TestRecentlyVerifiedPairPassesABlockedAddress: an address over its ceiling of
// failures (100 across users, by default) still admits a user who logged in from
// it recently, with bcrypt (the cache is off).
func TestRecentlyVerifiedPairPassesABlockedAddress(t *testing.T) {
	costs := map[string]int{"alice": bcrypt.MinCost}
	for i := range 12 {
		costs[fmt.Sprintf("user%02d", i)] = bcrypt.MinCost
	}
	h := newHarness(t, usersAtCost(t, costs, "cache_ttl: 0s"))
	const addr = "127.0.7.1"
	if got, _ := login(t, h.addr, addr, "alice", testPassword); !bytes.Equal(got, loginOK) {
		t.Fatalf("alice before: %x", got)
	}
	for i := range 110 {
		login(t, h.addr, addr, fmt.Sprintf("user%02d", i%12), fmt.Sprintf("wrong-%d", i))
	}
	if got, _ := login(t, h.addr, addr, "user11", testPassword); !bytes.Equal(got, loginFailed) {
		t.Errorf("a user who never logged in from the blocked address: %x, want refused", got)
	}
	if got, _ := login(t, h.addr, addr, "alice", testPassword); !bytes.Equal(got, loginOK) {
		t.Errorf("alice, verified from the blocked address before: %x, want %x", got, loginOK)
	}
}

// TestFailedLoginsThrottleTheUserAtTheAddress: after ten failures of one user from
// one address, that user's right password from there is refused unchecked, and no
// password reaches the log.
func TestFailedLoginsThrottleTheUserAtTheAddress(t *testing.T) {
	h := newHarness(t, "")
	for i := range 10 {
		login(t, h.addr, "", "alice", fmt.Sprintf("guess%d", i))
	}
	got, _ := login(t, h.addr, "", "alice", testPassword)
	if !bytes.Equal(got, loginFailed) {
		t.Fatalf("right password of a throttled user: %x, want refusal %x", got, loginFailed)
	}
	// Sessions count their logins after the client has the answer.
	waitFor(t, "10 failed and 1 throttled login counted", func() bool {
		return h.rec.get("auth throttled") == 1 && h.rec.get("auth failed") == 10
	})
	if strings.Contains(h.logs.String(), testPassword) || strings.Contains(h.logs.String(), "guess") {
		t.Error("a password appears in the log")
	}
	waitFor(t, "the throttled session's accounting line with close_reason=auth_throttled", func() bool {
		return strings.Contains(h.logs.String(), "close_reason=auth_throttled")
	})
}

// TestReloadKeepsTheThrottleAndDropsTheCache: a reload forgives no failure, and
// forgets verified logins (a removed user's cached password must not outlive it).
func TestReloadKeepsTheThrottleAndDropsTheCache(t *testing.T) {
	cfg := loadTestConfig(t, testConfig)
	users := &countingVerifier{Verifier: loadUsers(t, cfg)}
	h := startHarness(t, cfg, users)
	login(t, h.addr, "", "alice", testPassword)
	for i := range 10 {
		login(t, h.addr, "", "bob", fmt.Sprint("guess", i))
	}
	h.srv.Reload(cfg, users)
	if got, _ := login(t, h.addr, "", "bob", testPassword); !bytes.Equal(got, loginFailed) {
		t.Errorf("bob after the reload: %x, want still throttled", got)
	}
	if got, _ := login(t, h.addr, "", "alice", testPassword); !bytes.Equal(got, loginOK) || users.calls.Load() != 12 {
		t.Errorf("alice after the reload: %x after %d checks, want ok from a new check (12)", got, users.calls.Load())
	}
}
