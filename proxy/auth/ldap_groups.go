package auth

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/sockshaper/sockshaper/configs"
)

// maxGroups bounds the groups a member search returns.
const maxGroups = 1000

func parseGroups(groups configs.LDAPGroups) ([]dirGroup, error) {
	out := make([]dirGroup, len(groups))
	for i, g := range groups {
		dn, err := ldap.ParseDN(g.DN)
		if err != nil {
			return nil, fmt.Errorf("auth.ldap.groups[%q]: %w", g.DN, err)
		}
		out[i] = dirGroup{dn: dn, raw: g.DN, group: g.Group}
	}
	return out, nil
}

// groupBases returns where a member search looks for the configured groups: the
// deepest DN that holds them all (ou=groups,dc=campus,dc=example, typically), or
// each group's own DN when they share no ancestor.
func groupBases(groups []dirGroup) []string {
	if len(groups) == 0 {
		return nil
	}
	common := groups[0].dn.RDNs
	for _, g := range groups[1:] {
		n := 0
		for n < len(common) && n < len(g.dn.RDNs) &&
			common[len(common)-1-n].EqualFold(g.dn.RDNs[len(g.dn.RDNs)-1-n]) {
			n++
		}
		common = common[len(common)-n:]
	}
	if len(common) > 0 {
		return []string{(&ldap.DN{RDNs: common}).String()}
	}
	bases := make([]string, len(groups))
	for i, g := range groups {
		bases[i] = g.raw
	}
	return bases
}

// filterAttribute returns the attribute that filter compares with {user}, as in
// (uid={user}) or (&(objectClass=user)(sAMAccountName={user})), or "".
func filterAttribute(filter string) string {
	m := regexp.MustCompile(`\(\s*([A-Za-z][A-Za-z0-9-]*)\s*=\s*` + regexp.QuoteMeta(configs.UserPlaceholder) + `\s*\)`).
		FindStringSubmatch(filter)
	if m == nil {
		return ""
	}
	return m[1]
}

// canonicalUser returns the name a verified login counts as: the entry's value
// of attr that matches user (the directory compares names without case and
// surrounding spaces, so "Alice " binds as alice and must share alice's buckets),
// or its first value, or user when the entry has none.
func canonicalUser(e *ldap.Entry, attr, user string) string {
	if attr == "" {
		return user
	}
	values := e.GetEqualFoldAttributeValues(attr)
	for _, v := range values {
		if strings.EqualFold(strings.TrimSpace(v), strings.TrimSpace(user)) {
			return v
		}
	}
	if len(values) > 0 {
		return values[0]
	}
	return user
}

// resolveGroups sets r's directory groups and shaping group: from the entry's
// memberOf or, where it has none, from a search for groups whose member is the
// entry. With no groups configured there is nothing to choose, and the search is
// left out.
func (d *Directory) resolveGroups(ctx context.Context, e *ldap.Entry, r *DirectoryLogin) error {
	r.Groups, r.GroupsFrom = e.GetEqualFoldAttributeValues("memberOf"), "memberOf"
	if len(r.Groups) == 0 && len(d.groups) > 0 {
		r.GroupsFrom = "member search"
		var err error
		if r.Groups, err = d.searchGroups(ctx, e.DN); err != nil {
			return err
		}
	}
	r.Group, r.GroupDN = d.pick(r.Groups)
	return nil
}

// searchGroups returns the DNs of the groups under the group bases that list dn
// as a member (groupOfNames' member, groupOfUniqueNames' uniqueMember).
func (d *Directory) searchGroups(ctx context.Context, dn string) ([]string, error) {
	esc := ldap.EscapeFilter(dn)
	filter := "(|(member=" + esc + ")(uniqueMember=" + esc + "))"
	var groups []string
	for _, base := range d.groupBases {
		req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			maxGroups, int(d.cfg.Timeout.Seconds()+1), false, filter, []string{"1.1"}, nil)
		var res *ldap.SearchResult
		err := d.pool.do(ctx, OpSearch, func(c *ldap.Conn) error {
			var err error
			res, err = c.Search(req)
			if ldap.IsErrorAnyOf(err, ldap.LDAPResultNoSuchObject, ldap.LDAPResultSizeLimitExceeded) {
				return nil // a group that does not exist has no members
			}
			return err
		})
		if err != nil {
			return nil, d.answerError(ctx, "search for the user's groups", err)
		}
		if res == nil {
			continue
		}
		for _, e := range res.Entries {
			groups = append(groups, e.DN)
		}
	}
	return groups, nil
}

// pick returns the shaping group of the first configured group, in the config's
// order, that is one of groups, and that group's DN.
func (d *Directory) pick(groups []string) (group, dn string) {
	parsed := make([]*ldap.DN, 0, len(groups))
	for _, g := range groups {
		if p, err := ldap.ParseDN(g); err == nil {
			parsed = append(parsed, p)
		}
	}
	for _, g := range d.groups {
		for _, p := range parsed {
			if g.dn.EqualFold(p) {
				return g.group, g.raw
			}
		}
	}
	return "", ""
}

// ShapingGroupOf returns the shaping group auth.ldap.groups maps the directory
// group groupDN to (DNs compared without case), for `sockshaper ldap-test`.
func (d *Directory) ShapingGroupOf(groupDN string) (string, bool) {
	dn, err := ldap.ParseDN(groupDN)
	if err != nil {
		return "", false
	}
	for _, g := range d.groups {
		if g.dn.EqualFold(dn) {
			return g.group, true
		}
	}
	return "", false
}
