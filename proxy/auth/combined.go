package auth

import (
	"context"
	"runtime"
	"time"
)

// Combined is a [Verifier] for a users file and a directory together: the users
// the file lists (service accounts, guests) are checked against the file only,
// everyone else against the directory. Its [Tuning] is the directory's, so the
// Gate runs a worker per directory connection; bcrypt checks of the file's users
// are then bounded on their own to GOMAXPROCS-1 at once, so that guessing a file
// user's password cannot take every core.
//
// A reload does not cut the sessions of users removed from the file (they may be
// directory users now): their logins end when the cache forgets them.
type Combined struct {
	users *UsersFile
	dir   Verifier
	cpu   chan struct{}
}

// NewCombined returns a Combined of users and dir.
func NewCombined(users *UsersFile, dir Verifier) *Combined {
	return &Combined{users: users, dir: dir, cpu: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))}
}

// Verify implements [Verifier].
func (c *Combined) Verify(ctx context.Context, user, password string) (Identity, Verdict, error) {
	return c.VerifyEntry(ctx, user, password, nil)
}

// VerifyEntry implements [EntryVerifier]: admit reaches the directory, when it is
// an EntryVerifier, for the users it checks.
func (c *Combined) VerifyEntry(ctx context.Context, user, password string, admit func(string) bool) (Identity, Verdict, error) {
	if !c.users.Has(user) {
		if ev, ok := c.dir.(EntryVerifier); ok && admit != nil {
			return ev.VerifyEntry(ctx, user, password, admit)
		}
		return c.dir.Verify(ctx, user, password)
	}
	select {
	case c.cpu <- struct{}{}:
	case <-ctx.Done():
		return Identity{}, Unavailable, ctx.Err()
	}
	defer func() { <-c.cpu }()
	return c.users.Verify(ctx, user, password)
}

// UserName implements [UserNamer]: a name the file lists is itself; any other is
// the directory's name for it, which must not be a name the file lists (the
// file's "alice" shadows the directory's alice, however spelt: "Alice" and
// " alice" are refused, and count against the file's alice).
func (c *Combined) UserName(user string) (string, bool) {
	if c.users.Has(user) {
		return user, true
	}
	name, ok := userName(c.dir, user)
	return name, ok && !c.users.Has(name)
}

// FailureFloor implements [FailureFloorer]: the longer of the two floors, so that
// the time of a rejection does not tell a file user from a directory user.
func (c *Combined) FailureFloor() time.Duration {
	f := c.users.FailureFloor()
	if ff, ok := c.dir.(FailureFloorer); ok {
		f = max(f, ff.FailureFloor())
	}
	return f
}

// Tuning implements [Tuner] with the directory's tuning.
func (c *Combined) Tuning() Tuning {
	if t, ok := c.dir.(Tuner); ok {
		return t.Tuning()
	}
	return Tuning{}
}
