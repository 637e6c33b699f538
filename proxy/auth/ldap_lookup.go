package auth

import (
	"context"

	"github.com/go-ldap/ldap/v3"
)

// DirectoryLookup finds in a [Directory] the entry of a user who proved who they
// are without a password (a Kerberos ticket) and maps the entry's groups to a
// shaping group as a password login does, with its own search filter. Safe for
// concurrent use; it lives as long as its Directory.
type DirectoryLookup struct {
	d      *Directory
	filter string
}

// Lookup returns a DirectoryLookup that finds entries with filter, {user} standing
// for the name (auth.kerberos.ldap_user_filter, such as
// (userPrincipalName={user})); an empty filter uses auth.ldap.user_filter.
func (d *Directory) Lookup(filter string) *DirectoryLookup {
	if filter == "" {
		filter = d.cfg.UserFilter
	}
	return &DirectoryLookup{d: d, filter: filter}
}

// LookupUser returns, for a user already authenticated, OK and the identity (the
// name as given, the shaping group of the entry's groups); Rejected with a nil
// error when the directory has no entry for the name, or more than one (a
// principal the directory does not know, such as a service's, gets no access);
// Unavailable with the error when the directory cannot answer, which is not a
// failed login: the same outage semantics, logs and metrics as
// [Directory.Verify]. Names are escaped (RFC 4515) in the filter.
func (l *DirectoryLookup) LookupUser(ctx context.Context, user string) (Identity, Verdict, error) {
	if user == "" {
		return Identity{}, Rejected, nil
	}
	d := l.d
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	var r DirectoryLogin
	entry, err := l.find(ctx, user)
	if err == nil && entry != nil {
		err = d.resolveGroups(ctx, entry, &r)
	}
	if err != nil {
		d.outage.failed(err)
		return Identity{}, Unavailable, err
	}
	d.outage.answered()
	if entry == nil {
		return Identity{}, Rejected, nil
	}
	return Identity{User: user, Group: r.Group}, OK, nil
}

// UserName implements [UserNamer] with the directory's naming (see
// [Directory.UserName]), for the name a ticket's user is looked up and known by.
func (l *DirectoryLookup) UserName(user string) (string, bool) { return l.d.UserName(user) }

// find searches the user's entry as the service account; nil when there is none
// or more than one.
func (l *DirectoryLookup) find(ctx context.Context, user string) (*ldap.Entry, error) {
	d := l.d
	req := ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(d.cfg.Timeout.Seconds()+1), false, userFilter(l.filter, user), []string{"memberOf"}, nil)
	var res *ldap.SearchResult
	err := d.pool.do(ctx, OpSearch, func(c *ldap.Conn) error {
		var err error
		res, err = c.Search(req)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			res, err = nil, nil // two entries or more: ambiguous
		}
		return err
	})
	if err != nil {
		return nil, d.answerError(ctx, "search for the user", err)
	}
	if res == nil || len(res.Entries) != 1 {
		return nil, nil
	}
	return res.Entries[0], nil
}
