package auth

import (
	"context"
	"net/netip"
)

// UserLookup finds the identity (the shaping group) of a user who proved who
// they are without a password. [*DirectoryLookup] implements it.
type UserLookup interface {
	// LookupUser returns OK and the identity, Rejected when there is no such
	// user, or Unavailable with the error when it cannot tell (not a failed
	// login). It should give up with Unavailable when ctx ends.
	LookupUser(ctx context.Context, user string) (Identity, Verdict, error)
}

// TicketKind is the framing a Kerberos token comes in.
type TicketKind int

const (
	// SPNEGO is an HTTP "Negotiate" token ([TicketVerifier.AcceptSPNEGO]).
	SPNEGO TicketKind = iota
	// GSSAPI is an RFC 1961 context token ([TicketVerifier.AcceptGSS]).
	GSSAPI
)

// logins is the Verifier [WithTickets] returns: the password verifier, and
// what the Authenticators made from it accept tickets with.
type logins struct {
	passwords Verifier // nil: no password logins
	tickets   TicketVerifier
	lookup    UserLookup // nil: no directory
}

// WithTickets returns a Verifier that checks passwords with passwords (nil: the
// config has no password login, and every password is refused) and that makes
// the Authenticators a [Gate] builds from it accept Kerberos tickets with
// tickets ([Authenticator.LoginTicket]). lookup, when not nil, is asked for the
// identity of each user a ticket names (a directory's entry and groups);
// without it the user's group is left to shaping.members and default_group.
// The result lists the users (Has) when passwords does, for the password
// logins' sessions only: a users file that stops listing a name does not end
// the sessions of a ticket's user of that name (the KDC and the directory
// decide who has a ticket).
func WithTickets(passwords Verifier, tickets TicketVerifier, lookup UserLookup) Verifier {
	return &logins{passwords: passwords, tickets: tickets, lookup: lookup}
}

// Verify implements [Verifier] with the password verifier.
func (l *logins) Verify(ctx context.Context, user, password string) (Identity, Verdict, error) {
	if l.passwords == nil {
		return Identity{}, Rejected, nil
	}
	return l.passwords.Verify(ctx, user, password)
}

// Has lists the password verifier's users, when it lists them; a verifier that
// does not (a directory, or none) has everyone, so that a reload cuts nobody.
func (l *logins) Has(user string) bool {
	r, ok := l.passwords.(interface{ Has(string) bool })
	return !ok || r.Has(user)
}

// TicketOutcome is the answer to one Kerberos login.
type TicketOutcome struct {
	// Outcome is the login's: Identity when it is OK, and Result, the value of
	// sockshaper_auth_attempts_total's result label: the ticket check's
	// ([KerberosResult.Attempt]), or [ResultUnavailable] or [ResultAbandoned]
	// when the directory could not be asked about a good ticket's user.
	Outcome
	// Ticket is the ticket check: why a ticket was refused, and on success the
	// mutual-authentication reply, the GSS-API context and the ticket's end.
	// Its Result is [KerberosUnknownUser] for a good ticket whose user the
	// directory does not know.
	Ticket KerberosLogin
}

// OK reports whether the client logged in.
func (o TicketOutcome) OK() bool {
	return o.Ticket.Result == KerberosOK && o.Result == KerberosOK.Attempt()
}

// Tickets reports whether a accepts Kerberos tickets.
func (a *Authenticator) Tickets() bool { return a.tickets != nil }

// Passwords reports whether a checks passwords: false when the config's only
// login is Kerberos.
func (a *Authenticator) Passwords() bool { return a.v != nil }

// LoginTicket checks a Kerberos token from a client at the given address, then
// finds the identity of the user it names (see [WithTickets]). A good ticket
// is never throttled, and a bad one is not counted as a failed login: the
// throttle bounds guesses, and a ticket cannot be guessed (forging one takes
// the service's key), while a client with a wrong clock or a stale ticket
// would, retrying, push a shared address over its allowance and hold up the
// password logins behind it. A good ticket counts as a verified login of its
// user from the address ([configs.AuthThrottle].RememberVerified). The check
// is CPU only (no KDC); the directory is asked once per user however many
// logins bring them at once, and its answer is remembered for auth.cache_ttl
// (and the stale window during an outage), keyed by the user name.
func (a *Authenticator) LoginTicket(ctx context.Context, client netip.Addr, token []byte, kind TicketKind) TicketOutcome {
	if a.tickets == nil {
		l := KerberosLogin{Result: KerberosMechanism, Err: errNoTickets}
		return TicketOutcome{Outcome: Outcome{Result: l.Result.Attempt(), Err: l.Err}, Ticket: l}
	}
	var l KerberosLogin
	if kind == GSSAPI {
		l = a.tickets.AcceptGSS(token, client)
	} else {
		l = a.tickets.AcceptSPNEGO(token, client)
	}
	out := TicketOutcome{Outcome: Outcome{Result: l.Result.Attempt(), Err: l.Err}, Ticket: l}
	if l.Result != KerberosOK {
		return out
	}
	name := l.Identity.User
	if n, ok := a.lookup.(UserNamer); ok {
		// The directory's naming, so that "Alice" and "alice" of a directory
		// that folds case are one user, as with passwords.
		if name, ok = n.UserName(name); !ok {
			return out.refused(KerberosBadName, errBadDirectoryName)
		}
	}
	id, verdict, err, stale := a.lookupUser(ctx, name)
	switch {
	case verdict == Rejected:
		return out.refused(KerberosUnknownUser, err)
	case verdict == Unavailable && ctx.Err() != nil:
		out.Result, out.Err = ResultAbandoned, ctx.Err()
		return out
	case verdict == Unavailable:
		out.Result, out.Err = ResultUnavailable, err
		return out
	}
	out.Identity, out.Stale, out.Err = id, stale, err
	out.Ticket.Identity = id
	a.gate.throttle.succeed(ticket{p: pair{addr: addrKey(client), user: id.User}})
	return out
}

// refused turns a good ticket's outcome into a refusal for reason r.
func (o TicketOutcome) refused(r KerberosResult, err error) TicketOutcome {
	o.Ticket.Result, o.Ticket.Reply, o.Ticket.Context = r, nil, nil
	if err == nil {
		err = errUnknownUser
	}
	o.Ticket.Err, o.Result, o.Err = err, r.Attempt(), err
	return o
}
