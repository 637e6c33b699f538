package configs

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"gopkg.in/yaml.v3"
)

// UserPlaceholder stands for the user name in auth.ldap.user_filter.
const UserPlaceholder = "{user}"

// UnmarshalYAML reads a mapping of directory group DN to shaping group and keeps
// the mapping's order, since the first group the user is a member of wins.
func (g *LDAPGroups) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: auth.ldap.groups is a mapping of directory group DN to shaping group", n.Line)
	}
	groups := make(LDAPGroups, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		e := LDAPGroup{DN: n.Content[i].Value}
		if err := n.Content[i+1].Decode(&e.Group); err != nil {
			return err
		}
		groups = append(groups, e)
	}
	*g = groups
	return nil
}

// ldap checks the directory block: off when the URL is empty (and then nothing
// else may be set), otherwise a TLS-protected URL, the service account, the
// search and groups that map to defined shaping groups.
func (v *validator) ldap(l *LDAP, shapingGroups map[string]Limit) {
	p := path("auth", "ldap")
	if l.URL == "" {
		if l.StartTLS || l.CAFile != "" || l.BindDN != "" || l.BindPasswordFile != "" || l.BaseDN != "" || len(l.Groups) > 0 {
			v.add(p.key("url"), nil, "is empty, which turns the directory off, but other auth.ldap keys are set; set url or remove them")
		}
		return
	}
	v.ldapURL(p, l)
	for _, f := range []struct{ key, dn string }{{"bind_dn", l.BindDN}, {"base_dn", l.BaseDN}} {
		if f.dn == "" {
			v.add(p.key(f.key), nil, "is required with auth.ldap.url")
		} else if _, err := ldap.ParseDN(f.dn); err != nil {
			v.add(p.key(f.key), err, fmt.Sprintf("%q is not a distinguished name: %s", f.dn, ldapProblem(err)))
		}
	}
	if l.BindPasswordFile == "" {
		v.add(p.key("bind_password_file"), nil,
			"is required with auth.ldap.url: a file holding the service account's password (never the password itself)")
	}
	v.userFilter(p.key("user_filter"), l.UserFilter)
	v.ldapGroups(p.key("groups"), l.Groups, shapingGroups)
	if l.UserNameCase != NameCaseFold && l.UserNameCase != NameCaseExact {
		v.add(p.key("user_name_case"), nil, fmt.Sprintf("%q: want %s (the directory ignores case, as AD and OpenLDAP's uid do) or %s",
			l.UserNameCase, NameCaseFold, NameCaseExact))
	}
	v.positive(p.key("timeout"), l.Timeout)
	if l.StaleWindow < 0 {
		v.add(p.key("stale_window"), nil, "must not be negative (0 turns it off)")
	}
}

// ldapURL accepts ldaps://host[:port], and ldap://host[:port] with start_tls, or
// without it to a loopback address only: a plain connection would carry every
// user's password in clear text.
func (v *validator) ldapURL(p fieldPath, l *LDAP) {
	u, err := url.Parse(l.URL)
	if err != nil {
		v.add(p.key("url"), err, fmt.Sprintf("%q is not a URL: %v", l.URL, err))
		return
	}
	if u.Scheme != "ldap" && u.Scheme != "ldaps" || u.Host == "" || u.User != nil ||
		u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		v.add(p.key("url"), nil, fmt.Sprintf("%q: want ldaps://host[:port] or ldap://host[:port] (with start_tls)", l.URL))
		return
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			v.add(p.key("url"), err, fmt.Sprintf("%q: port %q is not a number from 1 to 65535", l.URL, port))
		}
	}
	switch {
	case u.Scheme == "ldaps" && l.StartTLS:
		v.add(p.key("start_tls"), nil, "must be false with an ldaps:// URL, which is TLS from the start; "+
			"StartTLS is for ldap:// URLs")
	case u.Scheme == "ldap" && !l.StartTLS && !loopbackHost(u.Hostname()):
		v.add(p.key("url"), nil, fmt.Sprintf("%q without start_tls would send passwords in clear text; "+
			"use ldaps://, or set start_tls: true", l.URL))
	}
}

// loopbackHost reports whether host names the local host.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// userFilter checks that the filter names the user and is a filter once the user
// is put in.
func (v *validator) userFilter(p fieldPath, f string) {
	if !strings.Contains(f, UserPlaceholder) {
		v.add(p, nil, fmt.Sprintf("%q does not contain %s, so it cannot find the user's entry", f, UserPlaceholder))
		return
	}
	if _, err := ldap.CompileFilter(strings.ReplaceAll(f, UserPlaceholder, "x")); err != nil {
		v.add(p, err, fmt.Sprintf("%q is not an LDAP filter (RFC 4515) such as (uid={user}): %s", f, ldapProblem(err)))
	}
}

func (v *validator) ldapGroups(p fieldPath, groups LDAPGroups, shapingGroups map[string]Limit) {
	defined := slices.Sorted(maps.Keys(shapingGroups))
	var seen []*ldap.DN
	for _, g := range groups {
		gp := p.key(g.DN)
		dn, err := ldap.ParseDN(g.DN)
		switch {
		case err != nil || len(dn.RDNs) == 0:
			v.add(gp, err, fmt.Sprintf("%q is not a distinguished name such as cn=staff,ou=groups,dc=campus,dc=example", g.DN))
		case slices.ContainsFunc(seen, dn.EqualFold):
			v.add(gp, nil, "names the same group as an earlier entry (DNs compare without case)")
		default:
			seen = append(seen, dn)
		}
		if _, ok := shapingGroups[g.Group]; !ok {
			v.add(gp, nil, undefinedGroup(g.Group, defined))
		}
	}
}

// ldapProblem is the reason in a go-ldap error, without its result code.
func ldapProblem(err error) string {
	var le *ldap.Error
	if errors.As(err, &le) && le.Err != nil {
		return strings.TrimPrefix(le.Err.Error(), "ldap: ")
	}
	return err.Error()
}
