// Package auth owns who a client is: it checks a user name and password against a
// [Verifier] (the users file, an LDAP or Active Directory server, or both) and
// guards that check with the verified-login cache, the in-flight de-duplication, a
// fair worker pool for the expensive comparisons, timing equalisation and the
// failed-login throttle; it also accepts Kerberos tickets against a keytab (HTTP
// Negotiate, SOCKS5 GSS-API). Every front (SOCKS5, HTTP, HTTP/2) asks the same
// [Authenticator].
//
// A [Gate] holds what lives as long as the server (the throttle and the worker
// pool); an [Authenticator] holds what a reload replaces (the verifier and the
// cache of verified logins).
package auth

import (
	"context"
	"net/netip"
	"time"
)

// Verdict is a [Verifier]'s answer.
type Verdict int

// The verdicts. The zero value is Rejected, so that a forgotten answer refuses.
const (
	// Rejected: the user is unknown or the password is wrong.
	Rejected Verdict = iota
	// OK: the password is the user's.
	OK
	// Unavailable: no answer could be had (a directory that cannot be reached or
	// timed out). It is not a failed login and never feeds the throttle.
	Unavailable
)

// String names the verdict for logs.
func (v Verdict) String() string {
	switch v {
	case OK:
		return "ok"
	case Unavailable:
		return "unavailable"
	default:
		return "rejected"
	}
}

// Identity is who a verified client is.
type Identity struct {
	// User is the user name the client logged in as.
	User string
	// Group is the shaping group the verifier assigns; "" leaves it to
	// shaping.members and shaping.default_group.
	Group string
}

// Verifier checks a user's password. Implementations must be safe for concurrent
// use.
type Verifier interface {
	// Verify returns OK and the user's identity when password is user's password,
	// Rejected (with a nil error) when the user is unknown or the password wrong,
	// and Unavailable with an error saying why when it cannot tell. It should give
	// up with Unavailable when ctx ends. A Verifier that is slower for some
	// rejections than for others (bcrypt hashes of mixed costs, a directory that
	// knows sooner that a user does not exist) should implement [FailureFloorer].
	Verify(ctx context.Context, user, password string) (Identity, Verdict, error)
}

// EntryVerifier is implemented by a [Verifier] that finds the user's entry (a
// directory's) before it checks the password. The [Authenticator] then counts
// failures per entry as well as per name: every spelling of a name that reaches
// one entry (case, compatibility forms, spaces the directory ignores) shares that
// entry's allowance of failures from an address.
type EntryVerifier interface {
	Verifier
	// VerifyEntry is Verify, calling admit with the entry's identity (its DN)
	// once it is found and before the password is tried. When admit returns
	// false, the password must not be tried and the answer is Rejected. admit is
	// called at most once, and not at all when there is no entry.
	VerifyEntry(ctx context.Context, user, password string, admit func(entry string) bool) (Identity, Verdict, error)
}

// FailureFloorer is implemented by a [Verifier] whose rejections take different
// times for different users. The [Authenticator] pads every rejection to at least
// FailureFloor, measured from the start of Verify, so that the time of a failed
// login does not tell which users exist.
type FailureFloorer interface {
	FailureFloor() time.Duration
}

// Tuner is implemented by a [Verifier] that wants the [Authenticator] and [Gate]
// that use it set up differently from the users file's needs.
type Tuner interface {
	Tuning() Tuning
}

// Tuning is what a [Tuner] asks for.
type Tuning struct {
	// Workers is how many checks should run at once; zero keeps the Gate's own
	// number (GOMAXPROCS-1, for bcrypt, which is all CPU). A verifier whose
	// checks wait on the network (a directory) wants as many as it can have
	// requests in flight.
	Workers int
	// StaleTTL is how long after its cache entry expired a verified login still
	// counts while the verifier answers Unavailable: a directory outage does not
	// lock out the users who logged in shortly before it. Zero: never.
	StaleTTL time.Duration
}

// The results of a login, which are the values of the result label of
// sockshaper_auth_attempts_total (metrics/labels.go pre-initialises the same list).
const (
	// ResultOK: verified, now or from the cache.
	ResultOK = "ok"
	// ResultFailed: the verifier rejected the password. Counts toward the throttle.
	ResultFailed = "failed"
	// ResultThrottled: refused without a check of the password, the address, the
	// (address, user) pair or the (address, entry) pair having failed too often.
	ResultThrottled = "throttled"
	// ResultBusy: refused without a check because the queue of checks was full.
	// Not a failure.
	ResultBusy = "busy"
	// ResultUnavailable: the verifier could not answer. Not a failure.
	ResultUnavailable = "unavailable"
	// ResultAbandoned: the client left, or its handshake deadline passed, before
	// the answer. Not a failure, and nothing is learnt from it: a password that
	// was verified for nobody is not cached.
	ResultAbandoned = "abandoned"
)

// Results lists every result, in the order the metrics pre-initialise them:
// the password logins' and then the Kerberos logins' ([KerberosResult.Attempt]).
func Results() []string {
	out := []string{ResultOK, ResultFailed, ResultThrottled, ResultBusy, ResultUnavailable, ResultAbandoned}
	for _, r := range KerberosResults() {
		out = append(out, r.Attempt())
	}
	return out
}

// Outcome is the answer to one login.
type Outcome struct {
	// Identity is set when Result is ResultOK.
	Identity Identity
	// Result is one of the Result constants.
	Result string
	// Err says why, for ResultUnavailable and ResultAbandoned, and for a Stale
	// ResultOK why the verifier could not answer; nil otherwise.
	Err error
	// Stale marks a ResultOK from a cache entry past cache_ttl but within the
	// stale window, given because the verifier was unavailable.
	Stale bool
}

// addrKey is the unit an address is counted in: an IPv4 address, or the /64 of
// an IPv6 one, since an IPv6 client is handed a whole /64 and can pick any address
// in it.
func addrKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.WithZone("").Prefix(64)
	return p
}
