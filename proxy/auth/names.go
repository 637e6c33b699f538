package auth

import (
	"strings"
	"unicode/utf8"
)

// UserNamer is implemented by a [Verifier] whose accounts are not named byte for
// byte. The [Authenticator] asks it for a login's name before anything else, and
// that name is then the one verified, cached and counted by the throttle: every
// spelling of a user that the verifier treats as one account shares one failure
// count (and "Alice" cannot get ten more guesses at alice's password than
// "alice" had).
type UserNamer interface {
	// UserName returns the name a login as user is verified and counted under,
	// and whether user can name an account at all. A name that cannot (a users
	// file's name with surrounding white space, which htpasswd never matches)
	// is refused before any check, as a failed login of the returned name. The
	// returned name must be a fixed point: UserName of it returns it, true.
	UserName(user string) (name string, ok bool)
}

// userName returns v's name for user, or user itself when v is no [UserNamer].
func userName(v Verifier, user string) (string, bool) {
	if n, ok := v.(UserNamer); ok {
		return n.UserName(user)
	}
	return user, true
}

// exactName is the users file's naming: htpasswd compares names byte for byte,
// so a name is itself, and one with surrounding white space (a pasted " alice")
// names nobody, since the file cannot hold one.
func exactName(user string) (string, bool) {
	return user, user != "" && strings.TrimSpace(user) == user
}

// directoryName is a directory's naming: surrounding white space trimmed (the
// directory ignores it, RFC 4518 section 2.6.1) and, with fold, the name
// lower-cased, as AD and OpenLDAP's caseIgnoreMatch compare names without case.
// The directory is then asked for exactly this name, so the cache and the
// throttle key on what the directory was asked: a name the folding merges but
// the directory would not can only fail to log in, never log in as another
// entry. Spellings the directory merges and this does not (compatibility forms,
// inner spaces) are caught by the entry's DN (see [EntryVerifier]). A name that
// is not UTF-8 (LDAP strings are) or is empty after trimming names nobody.
func directoryName(user string, fold bool) (string, bool) {
	if !utf8.ValidString(user) {
		return user, false
	}
	name := strings.TrimSpace(user)
	if fold {
		name = strings.ToLower(name)
	}
	return name, name != ""
}
