package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/sockshaper/sockshaper/configs"
)

// DefaultDirectoryConns is how many connections a [Directory] keeps open at most,
// and so how many logins it checks at once: a directory answers a search or a bind
// in a millisecond or two, so 16 connections carry thousands of logins a second.
const DefaultDirectoryConns = 16

// defaultOutageLogInterval is how often, at most, an unreachable directory is
// logged.
const defaultOutageLogInterval = time.Minute

// DirectoryOptions are what a [Directory] takes besides its config.
type DirectoryOptions struct {
	// Logger receives the outage lines. Nil discards.
	Logger *slog.Logger
	// Recorder receives metrics. Nil records nothing.
	Recorder DirectoryRecorder
	// Conns bounds the open connections. Zero means DefaultDirectoryConns.
	Conns int
	// OutageLogInterval is how often, at most, "directory unreachable" is
	// logged. Zero means a minute.
	OutageLogInterval time.Duration
}

// Directory is a [Verifier] that logs users in against an LDAP directory
// (OpenLDAP, Active Directory): it searches the user's entry as the service
// account, binds as that entry with the password, and maps the entry's groups to
// a shaping group. A directory that cannot be reached or does not answer within
// the timeout makes it answer Unavailable. It is also a [FailureFloorer] (an
// unknown user is answered without a bind) and a [Tuner] (it wants a worker per
// connection). Safe for concurrent use; [Directory.Close] it when replaced.
type Directory struct {
	cfg        configs.LDAP
	pool       *connPool
	userAttr   string     // the attribute user_filter compares with {user}; "" if none
	groups     []dirGroup // auth.ldap.groups, parsed, in order
	groupBases []string   // where to search for groups by member
	conns      int
	outage     *outageLog
	floor      floor
}

type dirGroup struct {
	dn    *ldap.DN
	raw   string
	group string
}

// NewDirectory returns a Directory for cfg, a validated auth.ldap block with its
// files' paths resolved. It reads the service account's password and the CA file,
// and connects to nothing: logins do, when they come. Errors name the field.
func NewDirectory(cfg configs.LDAP, opts DirectoryOptions) (*Directory, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("auth.ldap.url: %w", err)
	}
	password, err := readSecret(cfg.BindPasswordFile)
	if err != nil {
		return nil, fmt.Errorf("auth.ldap.bind_password_file: %w", err)
	}
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		if tc.RootCAs, err = readCAs(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("auth.ldap.ca_file: %w", err)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Recorder == nil {
		opts.Recorder = nopDirectoryRecorder{}
	}
	opts.Conns = cmpOr(opts.Conns, DefaultDirectoryConns)
	d := &Directory{
		cfg:      cfg,
		pool:     newConnPool(u, cfg.StartTLS, tc, cfg.BindDN, password, opts.Conns, opts.Recorder),
		userAttr: filterAttribute(cfg.UserFilter),
		conns:    opts.Conns,
		outage: &outageLog{log: opts.Logger, url: cfg.URL,
			interval: cmpOr(opts.OutageLogInterval, defaultOutageLogInterval)},
	}
	if d.groups, err = parseGroups(cfg.Groups); err != nil {
		return nil, err
	}
	d.groupBases = groupBases(d.groups)
	return d, nil
}

// Verify implements [Verifier]. An empty user or password is rejected without
// asking the directory: a bind with an empty password is an anonymous bind, which
// most directories accept, and is not a login.
func (d *Directory) Verify(ctx context.Context, user, password string) (Identity, Verdict, error) {
	return d.VerifyEntry(ctx, user, password, nil)
}

// VerifyEntry implements [EntryVerifier]: admit is asked with the entry's DN
// between the search and the bind. A nil admit admits every entry.
func (d *Directory) VerifyEntry(ctx context.Context, user, password string, admit func(entry string) bool) (Identity, Verdict, error) {
	r, err := d.login(ctx, user, password, admit)
	switch {
	case err != nil:
		return Identity{}, Unavailable, err
	case !r.OK:
		return Identity{}, Rejected, nil
	}
	return Identity{User: r.User, Group: r.Group}, OK, nil
}

// DirectoryLogin is what a login resolved to, step by step, for `sockshaper
// ldap-test`.
type DirectoryLogin struct {
	// Found is whether the search found exactly one entry; Matches is how many
	// it found (at most 2: more than one is refused as ambiguous).
	Found   bool
	Matches int
	// DN is the entry's DN, when found.
	DN string
	// OK is whether the bind as DN with the password succeeded.
	OK bool
	// User is the name the login counts as: the entry's value of the attribute
	// user_filter compares (so "Alice" and "alice" are one user), else the name
	// given. Set when OK.
	User string
	// Groups are the entry's directory groups (DNs), from GroupsFrom:
	// "memberOf", or "member search" where the entry has no memberOf. Set when OK.
	Groups     []string
	GroupsFrom string
	// Group is the shaping group of the first configured group in Groups, and
	// GroupDN that group; "" when none matched (shaping.default_group applies).
	Group, GroupDN string
}

// UserName implements [UserNamer]: surrounding white space trimmed, and the name
// lower-cased unless auth.ldap.user_name_case is exact.
func (d *Directory) UserName(user string) (string, bool) {
	return directoryName(user, d.cfg.UserNameCase != configs.NameCaseExact)
}

// Login runs a login and returns every step's outcome; the error says why the
// directory could not answer (a *DirectoryError).
func (d *Directory) Login(ctx context.Context, user, password string) (DirectoryLogin, error) {
	return d.login(ctx, user, password, nil)
}

// login is Login, asking admit (when not nil) whether the entry found may be
// tried: if not, the password is not tried and the login is not OK.
func (d *Directory) login(ctx context.Context, user, password string, admit func(string) bool) (DirectoryLogin, error) {
	var r DirectoryLogin
	if user == "" || password == "" {
		return r, nil
	}
	// The pool runs checks without a deadline: the directory bounds its own.
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	start := time.Now()
	entry, err := d.findUser(ctx, user, &r)
	if err == nil && entry != nil && (admit == nil || admit(entry.DN)) {
		r.OK, err = d.bind(ctx, entry.DN, password)
		if err == nil {
			d.floor.observe(time.Since(start))
		}
	}
	if err == nil && r.OK {
		r.User = canonicalUser(entry, d.userAttr, user)
		err = d.resolveGroups(ctx, entry, &r)
	}
	if err != nil {
		d.outage.failed(err)
		return r, err
	}
	d.outage.answered()
	return r, nil
}

// findUser searches the user's entry as the service account. The name is escaped
// (RFC 4515), so "*", "(", ")", "\" and NUL match themselves only.
func (d *Directory) findUser(ctx context.Context, user string, r *DirectoryLogin) (*ldap.Entry, error) {
	attrs := []string{"memberOf"}
	if d.userAttr != "" {
		attrs = append(attrs, d.userAttr)
	}
	req := ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(d.cfg.Timeout.Seconds()+1), false,
		userFilter(d.cfg.UserFilter, user), attrs, nil)
	var res *ldap.SearchResult
	err := d.pool.do(ctx, OpSearch, func(c *ldap.Conn) error {
		var err error
		res, err = c.Search(req)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return nil // two entries or more: ambiguous
		}
		return err
	})
	if err != nil {
		return nil, d.answerError(ctx, "search for the user", err)
	}
	r.Matches = len(res.Entries)
	if r.Matches != 1 {
		return nil, nil
	}
	r.Found, r.DN = true, res.Entries[0].DN
	return res.Entries[0], nil
}

// userFilter puts user into filter in place of {user}, escaped (RFC 4515).
func userFilter(filter, user string) string {
	return strings.ReplaceAll(filter, configs.UserPlaceholder, ldap.EscapeFilter(user))
}

// answerError turns an error the directory answered with (a *ldap.Error) into a
// *DirectoryError of kind other; the pool already made the others one.
func (d *Directory) answerError(ctx context.Context, op string, err error) error {
	var de *DirectoryError
	if errors.As(err, &de) {
		return err
	}
	return d.pool.failed(ctx, op, err, false)
}

// bind binds as dn with password on a pooled connection and binds the connection
// back as the service account before it returns to the pool, so that no pooled
// connection is ever left bound as a user. A bind the directory refuses is a
// wrong password (or a locked account); anything else is an error.
func (d *Directory) bind(ctx context.Context, dn, password string) (bool, error) {
	var verdict bool
	err := d.pool.do(ctx, OpBind, func(c *ldap.Conn) error {
		// Whatever the answer, the connection is no longer the service
		// account's: a failed bind leaves it anonymous, a successful one bound
		// as the user. It is bound back, or closed so that it is not reused.
		err := c.Bind(dn, password)
		if err != nil && !ldap.IsErrorAnyOf(err, refusedBind()...) {
			c.Close()
			return err
		}
		verdict = err == nil
		if err := c.Bind(d.pool.bindDN, d.pool.bindPW); err != nil {
			c.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return false, d.answerError(ctx, "bind as the user", err)
	}
	return verdict, nil
}

// refusedBind are the results with which a directory refuses a user's bind:
// a wrong password, and the refusals of locked, expired or disabled accounts
// (Active Directory answers those with 49 too).
func refusedBind() []uint16 {
	return []uint16{ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInappropriateAuthentication,
		ldap.LDAPResultInsufficientAccessRights, ldap.LDAPResultUnwillingToPerform,
		ldap.LDAPResultConstraintViolation}
}

// FailureFloor implements [FailureFloorer]: an unknown user is answered after
// the search alone, a wrong password after the search and the bind, so every
// rejection is padded to about the time of the latter.
func (d *Directory) FailureFloor() time.Duration { return d.floor.get() }

// Tuning implements [Tuner]: a worker per connection, since checks wait on the
// directory and not on the CPU, and the stale window of auth.ldap.stale_window.
func (d *Directory) Tuning() Tuning {
	return Tuning{Workers: d.conns, StaleTTL: d.cfg.StaleWindow}
}

// Close closes the idle connections; those in use close when their login ends.
// Logins after Close still work, on connections that are not kept.
func (d *Directory) Close() { d.pool.close() }

// URL returns the directory's URL.
func (d *Directory) URL() string { return d.cfg.URL }
