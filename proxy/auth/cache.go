package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
	"time"
)

// maxCached bounds the verified-login cache: a campus has tens of thousands of
// users, and an entry costs about 100 bytes.
const maxCached = 100_000

// loginKey is a keyed hash of a user name and password. The cache and the checks
// in flight are indexed by it, so they never hold a password, nor anything that
// could be checked against one without the per-process key.
type loginKey [sha256.Size]byte

// cache remembers verified logins for a time, so that a returning client does not
// pay for bcrypt on every session. An entry is kept for the stale window past its
// expiry, when it counts only while the verifier is unavailable.
type cache struct {
	ttl   time.Duration
	stale time.Duration
	now   func() time.Time
	key   [32]byte
	macs  sync.Pool // of *keyer: every login hashes, and a new HMAC costs its key schedule and 8 allocations

	mu      sync.Mutex
	entries map[loginKey]cached
}

type cached struct {
	id      Identity
	expires time.Time
}

func newCache(ttl, stale time.Duration, now func() time.Time) *cache {
	c := &cache{ttl: ttl, stale: max(stale, 0), now: now, entries: map[loginKey]cached{}}
	rand.Read(c.key[:]) // never fails: crypto/rand crashes the program instead
	return c
}

// keyer is an HMAC keyed with the cache's key, reset for each use, with a
// buffer for its input.
type keyer struct {
	mac hash.Hash
	in  []byte
	sum loginKey // Sum's output: a local one would escape to the heap
}

// keyOf returns the keyed hash of user and password: HMAC-SHA256 of the
// user's length (a uvarint), user and password, so that no two logins share
// an input.
func (c *cache) keyOf(user, password string) loginKey {
	kr, _ := c.macs.Get().(*keyer)
	if kr == nil {
		kr = &keyer{mac: hmac.New(sha256.New, c.key[:])}
	}
	kr.mac.Reset()
	kr.in = append(append(binary.AppendUvarint(kr.in[:0], uint64(len(user))), user...), password...)
	kr.mac.Write(kr.in)
	clear(kr.in) // the password does not stay in the pool
	kr.mac.Sum(kr.sum[:0])
	k := kr.sum
	if cap(kr.in) <= 1024 { // a huge login's buffer is not kept
		c.macs.Put(kr)
	}
	return k
}

// get returns the identity of a verified login that has not expired.
func (c *cache) get(k loginKey) (Identity, bool) {
	return c.lookup(k, 0)
}

// getStale returns the identity of a verified login that expired less than the
// stale window ago (or has not expired), for when the verifier cannot answer.
func (c *cache) getStale(k loginKey) (Identity, bool) {
	if c.stale <= 0 {
		return Identity{}, false
	}
	return c.lookup(k, c.stale)
}

// lookup returns k's identity if it expires after now minus grace, and forgets
// entries past the stale window.
func (c *cache) lookup(k loginKey, grace time.Duration) (Identity, bool) {
	if c.ttl <= 0 {
		return Identity{}, false
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	switch {
	case !ok:
		return Identity{}, false
	case !now.Before(e.expires.Add(c.stale)):
		delete(c.entries, k)
		return Identity{}, false
	case !now.Before(e.expires.Add(grace)):
		return Identity{}, false
	}
	return e.id, true
}

func (c *cache) put(k loginKey, id Identity) {
	if c.ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCached {
		for k, e := range c.entries {
			if !now.Before(e.expires.Add(c.stale)) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxCached {
			clear(c.entries)
		}
	}
	c.entries[k] = cached{id: id, expires: now.Add(c.ttl)}
}

// size returns the number of entries, for tests.
func (c *cache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
