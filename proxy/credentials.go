package proxy

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// maxCachedCredentials bounds the verified-credential cache: a campus has tens of
// thousands of users, and each entry costs about 50 bytes.
const maxCachedCredentials = 100_000

// Credentials is a users file loaded into memory: bcrypt hashes by user name, and a
// cache of recently verified pairs so that a returning client does not pay for bcrypt
// (tens of milliseconds) on every session. It implements armon/go-socks5's
// CredentialStore. A Credentials is safe for concurrent use; a reload builds a new one,
// which drops the cache.
type Credentials struct {
	hashes map[string][]byte
	// dummy is compared against when the user is unknown, so an unknown user costs
	// the same time as a wrong password.
	dummy []byte

	ttl      time.Duration
	cacheKey [32]byte
	mu       sync.Mutex
	cache    map[[sha256.Size]byte]time.Time // keyed hash of user and password -> expiry
	// inflight holds the checks running now, by the same key: sessions that bring a
	// pair already being checked wait for that check instead of running bcrypt
	// again. Without it, a client opening 16 sessions at once, or the sessions of
	// a user whose cache entry just expired, pay 16 bcrypt runs.
	inflight map[[sha256.Size]byte]*check
	bcrypts  atomic.Int64 // bcrypt comparisons run, for tests
}

// check is one bcrypt comparison that other sessions may wait for.
type check struct {
	done chan struct{}
	ok   bool
}

// LoadCredentials reads an htpasswd file of bcrypt lines ("user:$2y$..." as written
// by `htpasswd -B` or `sockshaper passwd`). Blank lines and lines starting with # are
// skipped. cacheTTL is how long a verified pair is remembered; zero disables it.
func LoadCredentials(path string, cacheTTL time.Duration) (*Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	return ParseCredentials(f, path, cacheTTL)
}

// ParseCredentials is [LoadCredentials] on an open reader; source names it in errors.
func ParseCredentials(r io.Reader, source string, cacheTTL time.Duration) (*Credentials, error) {
	c := &Credentials{hashes: map[string][]byte{}, ttl: cacheTTL, cache: map[[sha256.Size]byte]time.Time{},
		inflight: map[[sha256.Size]byte]*check{}}
	sc := bufio.NewScanner(r)
	maxCost := bcrypt.MinCost
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, err := parseUserLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", source, line, err)
		}
		if _, dup := c.hashes[user]; dup {
			return nil, fmt.Errorf("%s:%d: user %q is listed twice", source, line, user)
		}
		c.hashes[user] = hash
		if cost, _ := bcrypt.Cost(hash); cost > maxCost {
			maxCost = cost
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if len(c.hashes) == 0 {
		return nil, fmt.Errorf("%s: no users", source)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("sockshaper-dummy"), maxCost)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	c.dummy = dummy
	if _, err := rand.Read(c.cacheKey[:]); err != nil {
		return nil, fmt.Errorf("credential cache key: %w", err)
	}
	return c, nil
}

// parseUserLine splits "user:hash" and checks that the hash is bcrypt. htpasswd -B
// writes $2y$, which x/crypto/bcrypt reads as $2a$ (they are the same algorithm).
func parseUserLine(text string) (string, []byte, error) {
	user, hash, ok := strings.Cut(text, ":")
	if !ok || user == "" {
		return "", nil, fmt.Errorf("want user:bcrypt-hash")
	}
	if len(user) > 255 {
		return "", nil, fmt.Errorf("user name longer than 255 bytes (RFC 1929 limit)")
	}
	if !strings.HasPrefix(hash, "$2y$") && !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") {
		return "", nil, fmt.Errorf("user %q: only bcrypt hashes ($2y$, $2a$, $2b$) are accepted; create one with `sockshaper passwd %s` or `htpasswd -B`", user, user)
	}
	b := []byte(hash)
	if b[2] == 'y' {
		b[2] = 'a'
	}
	if _, err := bcrypt.Cost(b); err != nil {
		return "", nil, fmt.Errorf("user %q: %w", user, err)
	}
	return user, b, nil
}

// Users returns the number of users.
func (c *Credentials) Users() int { return len(c.hashes) }

// Has reports whether user is in the users file.
func (c *Credentials) Has(user string) bool {
	_, ok := c.hashes[user]
	return ok
}

// Valid reports whether password is user's password.
func (c *Credentials) Valid(user, password string) bool {
	key := c.pairKey(user, password)
	if c.cached(key) {
		return true
	}
	c.mu.Lock()
	if running, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		<-running.done
		return running.ok
	}
	mine := &check{done: make(chan struct{})}
	c.inflight[key] = mine
	c.mu.Unlock()

	// Deferred, so that waiters are released (refused) even if the check panics.
	defer func() {
		c.mu.Lock()
		delete(c.inflight, key)
		c.mu.Unlock()
		close(mine.done)
	}()
	mine.ok = c.compare(user, password)
	if mine.ok {
		c.remember(key)
	}
	return mine.ok
}

// compare runs bcrypt against user's hash, or against the dummy hash for an
// unknown user.
func (c *Credentials) compare(user, password string) bool {
	c.bcrypts.Add(1)
	hash, known := c.hashes[user]
	if !known {
		_ = bcrypt.CompareHashAndPassword(c.dummy, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

// pairKey is a keyed hash, so the cache never holds a password or anything that
// could be checked against one without the per-process key.
func (c *Credentials) pairKey(user, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.cacheKey[:])
	io.WriteString(m, user)
	m.Write([]byte{0})
	io.WriteString(m, password)
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

func (c *Credentials) cached(key [sha256.Size]byte) bool {
	if c.ttl <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.cache[key]
	if ok && time.Now().After(exp) {
		delete(c.cache, key)
		return false
	}
	return ok
}

func (c *Credentials) remember(key [sha256.Size]byte) {
	if c.ttl <= 0 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cache) >= maxCachedCredentials {
		for k, exp := range c.cache {
			if now.After(exp) {
				delete(c.cache, k)
			}
		}
		if len(c.cache) >= maxCachedCredentials {
			clear(c.cache)
		}
	}
	c.cache[key] = now.Add(c.ttl)
}

// HashPassword returns an htpasswd line "user:$2y$..." for password, in the format
// of `htpasswd -B`.
func HashPassword(user, password string) (string, error) {
	if user == "" || strings.ContainsAny(user, ":\n") || len(user) > 255 {
		return "", fmt.Errorf("user name must be 1 to 255 bytes without ':' or newline")
	}
	if password == "" || len(password) > 72 {
		return "", fmt.Errorf("password must be 1 to 72 bytes (bcrypt's limit)")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	hash = bytes.Replace(hash, []byte("$2a$"), []byte("$2y$"), 1)
	return user + ":" + string(hash), nil
}
