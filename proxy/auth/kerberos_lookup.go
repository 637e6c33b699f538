package auth

import (
	"context"
	"errors"
	"fmt"
)

var (
	errNoTickets        = errors.New("Kerberos is not configured (auth.kerberos.keytab_file)")
	errUnknownUser      = errors.New("the directory has no entry for the ticket's user, or more than one")
	errBadDirectoryName = errors.New("the ticket's user name is not one the directory can hold")
)

// lookupCall is one directory lookup, which every login of its user that
// comes while it runs waits for.
type lookupCall struct {
	done    chan struct{} // closed once the fields below are set
	id      Identity
	verdict Verdict
	err     error
}

// lookupUser returns user's identity: itself when there is no directory, else
// from the cache of lookups, or from the one lookup of user running now (a
// browser opening six connections with six tickets of alice costs one search).
// When the directory is unavailable, an identity it gave less than the stale
// window past its cache entry's expiry is used, and stale is true.
func (a *Authenticator) lookupUser(ctx context.Context, user string) (id Identity, v Verdict, err error, stale bool) {
	if a.lookup == nil {
		return Identity{User: user}, OK, nil, false
	}
	key := a.lookups.keyOf(user, "")
	if id, ok := a.lookups.get(key); ok {
		return id, OK, nil, false
	}
	a.mu.Lock()
	c := a.looking[user]
	if c == nil {
		c = &lookupCall{done: make(chan struct{})}
		a.looking[user] = c
		go a.runLookup(key, user, c)
	}
	a.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return Identity{}, Unavailable, ctx.Err(), false
	}
	if c.verdict == Unavailable {
		if id, ok := a.lookups.getStale(key); ok {
			return id, OK, c.err, true
		}
	}
	return c.id, c.verdict, c.err, false
}

// runLookup asks the directory, to the end even if the logins waiting leave
// (the next login of the user then finds the answer cached): the directory
// bounds its own wait (auth.ldap.timeout). A panic answers Unavailable rather
// than take the daemon down or leave the waiters hanging.
func (a *Authenticator) runLookup(key loginKey, user string, c *lookupCall) {
	defer func() {
		if r := recover(); r != nil {
			c.id, c.verdict, c.err = Identity{}, Unavailable, fmt.Errorf("directory lookup panicked: %v", r)
		}
		if c.verdict == OK {
			a.lookups.put(key, c.id)
		}
		a.mu.Lock()
		delete(a.looking, user)
		a.mu.Unlock()
		close(c.done)
	}()
	c.verdict = Unavailable
	c.id, c.verdict, c.err = a.lookup.LookupUser(context.Background(), user)
}
