package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/auth"
)

// ldapTest logs USER in against the config's directory, as the proxy would, and
// prints each step: the entry found, the password's verdict, the directory groups
// and the shaping group they choose, or why the login fails. It exits 0 when the
// login succeeds, 1 when it fails, 2 on a usage error.
func ldapTest(inv invocation) int {
	if inv.opts.configPath == "" {
		return inv.usage("-config FILE is required: the config with the auth.ldap block")
	}
	user, stdin, stdout, stderr := inv.args[0], inv.stdin, inv.stdout, inv.stderr
	cfg, users, err := loadAll(inv.opts.configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	l := cfg.Auth.LDAP
	if l.URL == "" {
		fmt.Fprintf(stderr, "%s: auth.ldap.url is not set: logins do not use a directory\n", cfg.Source)
		return 1
	}
	dir, err := auth.NewDirectory(l, auth.DirectoryOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cfg.Source, err)
		return 1
	}
	defer dir.Close()
	password, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sockshaper ldap-test:", err)
		return 1
	}
	fmt.Fprintf(stdout, "directory:  %s%s\n", l.URL, map[bool]string{true: " (StartTLS)"}[l.StartTLS])
	fmt.Fprintf(stdout, "search:     %s under %s\n", l.UserFilter, l.BaseDN)
	if users != nil && users.Has(user) {
		fmt.Fprintf(stdout, "note:       %q is in the users file %s: the proxy checks it there, not in the directory\n",
			user, cfg.Auth.UsersFile)
	}
	r, err := dir.Login(context.Background(), user, password)
	if !printLogin(stdout, cfg, dir, user, password, r, err) {
		return 1
	}
	return 0
}

// printLogin prints a login's outcome and reports whether it succeeded.
func printLogin(w io.Writer, cfg *configs.Config, dir *auth.Directory, user, password string, r auth.DirectoryLogin, err error) bool {
	l := cfg.Auth.LDAP
	switch {
	case err != nil:
		what := map[string]string{
			auth.KindUnreachable: "directory unreachable", auth.KindTimeout: "directory timed out (auth.ldap.timeout " + l.Timeout.String() + ")",
			auth.KindTLS: "TLS error", auth.KindOther: "directory error",
		}[auth.ErrorKind(err)]
		if r.Found {
			fmt.Fprintf(w, "entry:      %s\n", r.DN)
		}
		fmt.Fprintf(w, "FAILED:     %s: %v\n", what, err)
		fmt.Fprintln(w, "            (the proxy answers such logins as unavailable, not failed)")
		return false
	case user == "" || password == "":
		fmt.Fprintln(w, "FAILED:     empty user name or password: refused without asking the directory (it would be an anonymous bind)")
		return false
	case r.Matches == 0:
		fmt.Fprintf(w, "FAILED:     user not found: no entry under %s matches %s\n", l.BaseDN, l.UserFilter)
		return false
	case r.Matches > 1:
		fmt.Fprintf(w, "FAILED:     ambiguous: more than one entry under %s matches %s; the login is refused\n", l.BaseDN, l.UserFilter)
		return false
	}
	fmt.Fprintf(w, "entry:      %s\n", r.DN)
	if !r.OK {
		fmt.Fprintln(w, "FAILED:     wrong password (or the directory refused the bind: account locked or disabled)")
		return false
	}
	fmt.Fprintln(w, "password:   ok")
	fmt.Fprintf(w, "login as:   %s\n", r.User)
	printGroups(w, cfg, dir, r)
	return true
}

// printGroups lists the directory groups with the shaping group each maps to,
// and says which shaping group the user gets, and why.
func printGroups(w io.Writer, cfg *configs.Config, dir *auth.Directory, r auth.DirectoryLogin) {
	fmt.Fprintf(w, "groups:     %d (%s)\n", len(r.Groups), r.GroupsFrom)
	for _, g := range r.Groups {
		if s, ok := dir.ShapingGroupOf(g); ok {
			fmt.Fprintf(w, "            %s -> %s\n", g, s)
		} else {
			fmt.Fprintf(w, "            %s (not in auth.ldap.groups)\n", g)
		}
	}
	s := cfg.Shaping
	switch member, ok := s.Members[r.User]; {
	case ok:
		fmt.Fprintf(w, "shaping:    %s (shaping.members lists %s, which wins over the directory)\n", member, r.User)
	case r.Group != "":
		fmt.Fprintf(w, "shaping:    %s (first match in auth.ldap.groups: %s)\n", r.Group, r.GroupDN)
	case s.DefaultGroup != "":
		fmt.Fprintf(w, "shaping:    %s (shaping.default_group: no group in auth.ldap.groups matched)\n", s.DefaultGroup)
	default:
		fmt.Fprintln(w, "shaping:    no group (shaping.groups is empty): only app and global limits apply")
	}
}
