package proxy

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// One bcrypt hash of "wonderland" (cost 5) written with each prefix: $2y$ is what
// `htpasswd -B` writes, $2a$ what x/crypto/bcrypt writes, $2b$ what OpenBSD writes;
// the algorithm is the same.
const (
	hash2a = "$2a$05$XGnucDWyqTPPVIX7zIwIPedgKccPsyvMcYFWVzsnpo2qXoM1ZlLWC"
	hash2y = "$2y$05$XGnucDWyqTPPVIX7zIwIPedgKccPsyvMcYFWVzsnpo2qXoM1ZlLWC"
	hash2b = "$2b$05$XGnucDWyqTPPVIX7zIwIPedgKccPsyvMcYFWVzsnpo2qXoM1ZlLWC"
)

func TestParseCredentialsAcceptsBcryptPrefixes(t *testing.T) {
	file := "# campus users\n\nalice:" + hash2y + "\nbob:" + hash2a + "\ncarol:" + hash2b + "\n"
	c, err := ParseCredentials(strings.NewReader(file), "users", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if !c.Valid(u, "wonderland") {
			t.Errorf("%s: right password refused", u)
		}
		if c.Valid(u, "Wonderland") {
			t.Errorf("%s: wrong password accepted", u)
		}
	}
	if c.Valid("mallory", "wonderland") {
		t.Error("unknown user accepted")
	}
}

func TestParseCredentialsErrors(t *testing.T) {
	tests := []struct{ file, want string }{
		{"alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", `users:1: user "alice": only bcrypt hashes`},
		{"\nalice:$apr1$abc$def\n", `users:2: user "alice": only bcrypt hashes`},
		{"alice\n", "users:1: want user:bcrypt-hash"},
		{"alice:$2y$05$short\n", `users:1: user "alice": crypto/bcrypt`},
		{"alice:" + hash2y + "\nalice:" + hash2y + "\n", `users:2: user "alice" is listed twice`},
		{"# nobody\n", "users: no users"},
	}
	for _, tc := range tests {
		_, err := ParseCredentials(strings.NewReader(tc.file), "users", 0)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("file %q: error %v, want prefix %q", tc.file, err, tc.want)
		}
	}
}

// An unknown user must cost what a wrong password costs: the dummy hash is compared
// at the highest cost of the file, so the work is the same. (The time itself is a
// benchmark's business; the cost is what makes it equal.)
func TestUnknownUserPaysTheSameBcryptCost(t *testing.T) {
	c, err := ParseCredentials(strings.NewReader("alice:"+hash2y+"\n"), "users", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := bcrypt.Cost(c.dummy); got != 5 {
		t.Errorf("dummy hash cost %d, want the users' cost 5", got)
	}
	costly, err := bcrypt.GenerateFromPassword([]byte("x"), 12)
	if err != nil {
		t.Fatal(err)
	}
	mixed := "alice:" + hash2y + "\nbob:" + string(costly) + "\n"
	if c, err = ParseCredentials(strings.NewReader(mixed), "users", 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := bcrypt.Cost(c.dummy); got != 12 {
		t.Errorf("dummy hash cost %d, want the file's highest, 12", got)
	}
}

func TestCredentialCache(t *testing.T) {
	c, err := ParseCredentials(strings.NewReader("alice:"+hash2y+"\n"), "users", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Valid("alice", "wonderland") || len(c.cache) != 1 {
		t.Fatalf("verified pair not cached (cache size %d)", len(c.cache))
	}
	if c.Valid("alice", "wrong") || len(c.cache) != 1 {
		t.Fatal("a wrong password was cached or accepted")
	}
	if !c.Valid("alice", "wonderland") {
		t.Fatal("cached pair refused")
	}
	for k := range c.cache {
		if bytes.Contains(k[:], []byte("wonderland")) {
			t.Fatal("cache key holds the password")
		}
		c.cache[k] = time.Now().Add(-time.Second) // expire it
	}
	if !c.Valid("alice", "wonderland") || len(c.cache) != 1 {
		t.Fatal("expired entry not re-verified and re-cached")
	}
}

// TestConcurrentChecksOfOnePairShareOneBcrypt: sessions that bring the same user
// and password at the same moment (a client opening several connections, or a
// user's sessions after the cache entry expired) run bcrypt once between them,
// whether the password is right or wrong.
func TestConcurrentChecksOfOnePairShareOneBcrypt(t *testing.T) {
	// Cost 10, the htpasswd default: tens of milliseconds, so the checks overlap.
	line, err := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		password string
		want     bool
	}{{"wonderland", true}, {"wrong", false}} {
		c, err := ParseCredentials(strings.NewReader("alice:"+string(line)+"\n"), "users", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		const sessions = 16
		start := make(chan struct{})
		results := make(chan bool, sessions)
		for range sessions {
			go func() {
				<-start
				results <- c.Valid("alice", tc.password)
			}()
		}
		close(start)
		for range sessions {
			if got := <-results; got != tc.want {
				t.Fatalf("password %q: Valid = %v, want %v", tc.password, got, tc.want)
			}
		}
		if n := c.bcrypts.Load(); n != 1 {
			t.Errorf("password %q: %d sessions at once ran bcrypt %d times, want once", tc.password, sessions, n)
		}
		if len(c.inflight) != 0 {
			t.Errorf("password %q: %d checks left in flight", tc.password, len(c.inflight))
		}
	}
}

func TestHashPasswordWritesHtpasswdLine(t *testing.T) {
	line, err := HashPassword("alice", "wonderland")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "alice:$2y$10$") {
		t.Fatalf("line %q, want alice:$2y$10$...", line)
	}
	c, err := ParseCredentials(strings.NewReader(line), "users", 0)
	if err != nil || !c.Valid("alice", "wonderland") {
		t.Fatalf("own line does not verify: %v", err)
	}
	for _, bad := range [][2]string{{"", "x"}, {"a:b", "x"}, {"alice", ""}, {"alice", strings.Repeat("x", 73)}} {
		if _, err := HashPassword(bad[0], bad[1]); err == nil {
			t.Errorf("HashPassword(%q, %d bytes) accepted", bad[0], len(bad[1]))
		}
	}
}

func TestFailedLoginsThrottleTheAddress(t *testing.T) {
	h := newHarness(t, "")
	for range authFailuresAllowed {
		exchange(t, h.addr, cat(greetUserPass, loginMsg("alice", "guess")))
	}
	got := exchange(t, h.addr, loggedIn())
	if !bytes.Equal(got, []byte{5, 2, 1, 1}) {
		t.Fatalf("right password from a throttled address: %x, want refusal 05020101", got)
	}
	waitFor(t, "throttled count", func() bool { return h.rec.get("auth throttled") == 1 })
	if n := h.rec.get("auth failed"); n != authFailuresAllowed {
		t.Errorf("failed logins counted %d, want %d", n, authFailuresAllowed)
	}
	if strings.Contains(h.logs.String(), testPassword) || strings.Contains(h.logs.String(), "guess") {
		t.Error("a password appears in the log")
	}
}

// discardConn is the write side of a session in the fuzz target: the handshake's
// replies go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)        { return len(p), nil }
func (discardConn) Close() error                       { return nil }
func (discardConn) SetDeadline(time.Time) error        { return nil }
func (discardConn) SetReadDeadline(t time.Time) error  { return nil }
func (discardConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzHandshake feeds arbitrary client bytes to the greeting, RFC 1929 and request
// parsers; they must never panic and must either fail or produce a destination.
func FuzzHandshake(f *testing.F) {
	f.Add(cat(loggedIn(), requestMsg(1, "127.0.0.1", 80)))
	f.Add(cat(loggedIn(), requestMsg(1, "example.org", 443)))
	f.Add(cat(loggedIn(), requestMsg(3, "::1", 53)))
	f.Add([]byte{5, 1, 0, 5, 1, 0, 3, 0, 0, 80})
	f.Add([]byte{5, 255})
	creds, err := ParseCredentials(strings.NewReader("alice:"+hash2y+"\n"), "users", time.Minute)
	if err != nil {
		f.Fatal(err)
	}
	cfg := loadTestConfig(f, testConfig)
	srv := New(cfg, creds, Options{})
	f.Fuzz(func(t *testing.T, in []byte) {
		sess := &session{srv: srv, pol: srv.policy.Load(), conn: discardConn{}, client: netip.MustParseAddrPort("127.0.0.1:1"), log: srv.log}
		req, err := sess.handshake(bufio.NewReader(bytes.NewReader(in)))
		if err == nil && req.DestAddr == nil {
			t.Fatal("request without destination")
		}
		if err == nil && sess.requested == "" {
			t.Fatal("request accepted without a destination string")
		}
	})
}
