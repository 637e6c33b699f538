package auth

import "net/netip"

// Cached answers a login at once when its answer needs no wait, as [Login]
// would answer it: a verified login in the cache (ResultOK, which settles the
// address's account as a success does), or a name and address that are
// throttled now (ResultThrottled), or no password login configured. Otherwise
// ok is false and nothing was counted: the caller runs [Login], under the
// context that bounds the wait for a check.
//
// A front asks it first so that a returning client's login, the common case
// under churn, costs no context and no watch for a hang-up (issue 24). A miss
// still takes Login's whole path, so hanging up on a miss buys nothing.
func (a *Authenticator) Cached(client netip.Addr, user, password string) (out Outcome, ok bool) {
	if a.v == nil {
		return Outcome{Result: ResultFailed}, true
	}
	name, valid := userName(a.v, user)
	if !valid {
		return Outcome{}, false // counted and padded by Login
	}
	p := pair{addr: addrKey(client), user: name}
	t := a.gate.throttle
	if t.blocked(p) {
		return Outcome{Result: ResultThrottled}, true
	}
	if id, hit := a.cache.get(a.cache.keyOf(name, password)); hit {
		t.succeed(ticket{p: p})
		return Outcome{Identity: id, Result: ResultOK}, true
	}
	return Outcome{}, false
}
