package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultReplayEntries bounds a [ReplayCache]: each accepted authenticator is
// remembered for max_clock_skew, so 262,144 entries hold 870 Kerberos logins a
// second for the default 5 minutes, in about 20 MB at most.
const DefaultReplayEntries = 1 << 18

// replaySweepInterval is how often, at most, expired entries are swept when the
// cache is not full: a sweep visits every entry.
const replaySweepInterval = time.Minute

// ReplayCache remembers the authenticators accepted, for as long as they could
// be accepted again (RFC 4120 3.2.3), so that a captured token cannot be sent
// twice. It outlives reloads: give every [Kerberos] of a server the same one. An
// entry is the SHA-256 of the encrypted authenticator (as MIT's replay cache
// since 1.18), which no one without the session key can vary. Safe for
// concurrent use.
type ReplayCache struct {
	max int

	mu        sync.Mutex
	seen      map[[sha256.Size]byte]int64 // until, Unix nanoseconds
	lastSweep time.Time
	nextSweep time.Time
}

// NewReplayCache returns a cache of at most max entries; zero means
// [DefaultReplayEntries]. A full cache refuses logins ([KerberosBusy]) rather
// than forget an entry that could then be replayed.
func NewReplayCache(max int) *ReplayCache {
	if max <= 0 {
		max = DefaultReplayEntries
	}
	return &ReplayCache{max: max, seen: make(map[[sha256.Size]byte]int64)}
}

// check records the authenticator whose ciphertext is cipher as seen until
// until, and returns KerberosReplay if it was seen already, KerberosBusy if the
// cache has no room, and KerberosOK otherwise.
func (c *ReplayCache) check(cipher []byte, until, now time.Time) KerberosResult {
	key := sha256.Sum256(cipher)
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, ok := c.seen[key]; ok && u > now.UnixNano() {
		return KerberosReplay
	}
	// A full cache is swept at most once a second: a sweep visits every entry.
	if now.After(c.nextSweep) || len(c.seen) >= c.max && now.Sub(c.lastSweep) >= time.Second {
		c.sweep(now)
	}
	if len(c.seen) >= c.max {
		return KerberosBusy
	}
	c.seen[key] = until.UnixNano()
	return KerberosOK
}

// sweep deletes the entries past their time.
func (c *ReplayCache) sweep(now time.Time) {
	n := now.UnixNano()
	for k, u := range c.seen {
		if u <= n {
			delete(c.seen, k)
		}
	}
	c.lastSweep, c.nextSweep = now, now.Add(replaySweepInterval)
}

// Len returns the number of authenticators remembered.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
