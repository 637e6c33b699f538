package configs

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

func (v *validator) shaping(s *Shaping, classes AppClasses) {
	groups := slices.Sorted(maps.Keys(s.Groups))
	for _, name := range groups {
		p := path("shaping", "groups", name)
		if name == "" {
			v.add(p, nil, "group name must not be empty")
		}
		v.limit(p, s.Groups[name])
	}
	switch _, ok := s.Groups[s.DefaultGroup]; {
	case s.DefaultGroup == "" && len(groups) > 0:
		v.add(path("shaping", "default_group"), nil, fmt.Sprintf(
			"must name the group of users not in shaping.members, one of %s", strings.Join(groups, ", ")))
	case s.DefaultGroup != "" && !ok:
		v.add(path("shaping", "default_group"), nil, undefinedGroup(s.DefaultGroup, groups))
	}
	for _, user := range slices.Sorted(maps.Keys(s.Members)) {
		p := path("shaping", "members", user)
		if user == "" {
			v.add(p, nil, "user name must not be empty")
		}
		if _, ok := s.Groups[s.Members[user]]; !ok {
			v.add(p, nil, undefinedGroup(s.Members[user], groups))
		}
	}
	names := make([]string, len(classes))
	for i, c := range classes {
		names[i] = c.Name
	}
	for _, name := range slices.Sorted(maps.Keys(s.Apps)) {
		p := path("shaping", "apps", name)
		if !slices.Contains(names, name) {
			v.add(p, nil, fmt.Sprintf("app class %q is not defined under the top-level apps key (defined: %s)",
				name, strings.Join(names, ", ")))
		}
		v.limit(p.key("per_user"), s.Apps[name].PerUser)
		v.limit(p.key("total"), s.Apps[name].Total)
	}
	v.limit(path("shaping", "global"), s.Global)
	v.positive(path("shaping", "idle_eviction"), s.IdleEviction)
}

func undefinedGroup(name string, groups []string) string {
	if len(groups) == 0 {
		return fmt.Sprintf("group %q is not defined: shaping.groups is empty", name)
	}
	return fmt.Sprintf("group %q is not defined under shaping.groups (defined: %s)", name, strings.Join(groups, ", "))
}

// limit checks a Limit built in Go; a parsed one cannot be negative.
func (v *validator) limit(p fieldPath, l Limit) {
	for _, f := range []struct {
		key string
		n   int64
	}{{"upload", int64(l.Upload)}, {"download", int64(l.Download)}, {"burst", int64(l.Burst)}} {
		if f.n < 0 {
			v.add(p.key(f.key), nil, "must not be negative")
		}
	}
}

func (v *validator) apps(classes AppClasses) {
	seen := make(map[string]bool)
	for i := range classes {
		c := &classes[i]
		p := path("apps", c.Name)
		v.className(p, c.Name, seen)
		if len(c.Domains)+len(c.Networks)+len(c.AnyAddressPorts) == 0 {
			v.add(p, nil, "needs at least one of domains, networks or any_address_ports")
		} else if len(c.Ports) > 0 && len(c.Domains)+len(c.Networks) == 0 {
			v.add(p.key("ports"), nil, "narrows domains and networks matches, and this class has neither; "+
				"use any_address_ports to match on the port alone")
		}
		for j, d := range c.Domains {
			if norm, err := normalizeDomain(d); err != nil {
				v.add(p.key("domains").index(j), err, err.Error())
			} else {
				c.Domains[j] = norm
			}
		}
		c.Prefixes = nil
		for j, s := range c.Networks {
			if pfx, err := parsePrefix(s); err != nil {
				v.add(p.key("networks").index(j), err, netipProblem(s, err))
			} else {
				c.Prefixes = append(c.Prefixes, pfx)
			}
		}
		v.portRanges(p.key("ports"), c.Ports)
		v.portRanges(p.key("any_address_ports"), c.AnyAddressPorts)
		v.dscp(p, c)
	}
}

// className keeps class names usable as Prometheus label values and config keys.
func (v *validator) className(p fieldPath, name string, seen map[string]bool) {
	switch {
	case name == "":
		v.add(p, nil, "class name must not be empty")
	case name == "other":
		v.add(p, nil, `class name "other" is reserved for traffic that matches no class`)
	case strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "":
		v.add(p, nil, `class name must be lowercase letters, digits, "_" and "-"`)
	case seen[name]:
		v.add(p, nil, "class is defined twice")
	}
	seen[name] = true
}

func (v *validator) portRanges(p fieldPath, prs []PortRange) {
	for i, pr := range prs {
		if err := pr.check(); err != nil {
			v.add(p.index(i), err, err.Error())
		}
	}
}

// normalizeDomain returns d as the classifier compares it: lower case, without a
// leading "*." or "." (every rule is a suffix match on a label boundary anyway) and
// without a trailing dot.
func normalizeDomain(s string) (string, error) {
	for _, r := range s {
		if r >= 0x80 {
			return "", fmt.Errorf("%q is not ASCII; write an internationalized name in its xn-- form", s)
		}
	}
	d := strings.ToLower(strings.TrimSpace(s))
	d = strings.TrimPrefix(d, "*.")
	d = strings.TrimPrefix(d, ".")
	d = strings.TrimSuffix(d, ".")
	if _, err := netip.ParseAddr(d); err == nil {
		return "", fmt.Errorf("%q is an IP address; list it under networks", s)
	}
	if d == "" || len(d) > 253 {
		return "", fmt.Errorf("%q is not a domain name of 1 to 253 characters", s)
	}
	for _, label := range strings.Split(d, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
			return "", fmt.Errorf("%q is not a valid domain name: label %q is not 1 to 63 letters, "+
				`digits, "-" or "_" with no "-" at either end`, s, label)
		}
	}
	return d, nil
}
