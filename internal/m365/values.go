package m365

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// The narrowest prefix lengths a network may have. Microsoft's widest are /14
// (IPv4) and /38 (IPv6); a /0 or /4 in a response would make the class match
// most of the Internet.
const (
	minBits4 = 8
	minBits6 = 16
)

// suffixOf turns a URL of an endpoint set into the name suffix the classifier
// matches. "*.teams.microsoft.com" and "teams.microsoft.com" both become
// "teams.microsoft.com", which matches the name and every name under it: the
// classifier's rules are suffixes on a label boundary. A wildcard anywhere else
// ("*-admin.example.com", "autodiscover.*.example.com") has no such rule and is
// skipped, as are names with a scheme, port or path, single labels and public
// suffixes such as "com" or "co.uk", which would match everyone's names.
func suffixOf(u string) (string, error) {
	if len(u) > 255 {
		return "", errors.New("longer than a host name can be")
	}
	d := strings.ToLower(strings.TrimSpace(u))
	switch {
	case strings.Contains(d, "/"):
		return "", errors.New("has a scheme or path: a rule is a host name")
	case strings.Contains(d, ":"):
		return "", errors.New("has a port: a rule is a host name")
	}
	d = strings.TrimPrefix(d, "*.")
	if strings.Contains(d, "*") {
		return "", errors.New("a wildcard inside a name cannot be a suffix rule")
	}
	d = strings.TrimSuffix(d, ".")
	if err := checkLabels(d); err != nil {
		return "", err
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return "", errors.New("an address, not a name")
	}
	if !strings.Contains(d, ".") {
		return "", errors.New("a single label would match a whole top-level domain")
	}
	if ps, _ := publicsuffix.PublicSuffix(d); ps == d {
		return "", errors.New("a public suffix would match every name registered under it")
	}
	return d, nil
}

// checkLabels reports what makes d not a host name of 1-253 characters.
func checkLabels(d string) error {
	if d == "" || len(d) > 253 {
		return errors.New("not a host name of 1 to 253 characters")
	}
	for label := range strings.SplitSeq(d, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return errors.New(`not a host name: each label is 1 to 63 letters, digits, "-" or "_"`)
		}
	}
	return nil
}

// networkOf turns an IP range of an endpoint set into a masked prefix, refusing
// what could not be a Microsoft 365 network: anything broader than /8 (IPv4) or
// /16 (IPv6), and prefixes that reach special-purpose space (private, loopback,
// link-local, multicast, documentation, CGNAT, reserved; IPv6 outside global
// unicast 2000::/3), which would put campus or local traffic in the class.
func networkOf(s string, special []netip.Prefix) (netip.Prefix, error) {
	if len(s) > 64 {
		return netip.Prefix{}, errors.New("longer than a CIDR prefix can be")
	}
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, errors.New("not a CIDR prefix such as 52.112.0.0/14")
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, errors.New("an IPv4-mapped prefix shorter than /96")
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	p = p.Masked()
	switch {
	case p.Addr().Is4() && p.Bits() < minBits4, p.Addr().Is6() && p.Bits() < minBits6:
		return netip.Prefix{}, fmt.Errorf("broader than /%d (IPv4) or /%d (IPv6)", minBits4, minBits6)
	case p.Addr().Is6() && !netip.MustParsePrefix("2000::/3").Contains(p.Addr()):
		return netip.Prefix{}, errors.New("not global unicast IPv6 (2000::/3)")
	}
	for _, sp := range special {
		if p.Overlaps(sp) {
			return netip.Prefix{}, fmt.Errorf("reaches special-purpose range %s", sp)
		}
	}
	return p, nil
}

// specialPrefixes are the special-purpose ranges (RFC 6890 and its updates) no
// public service's network may reach.
func specialPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"2001::/32", "2001:2::/48", "2001:10::/28", "2001:20::/28", "2001:db8::/32", "2002::/16", "3fff::/20",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// reduceDomains returns the names sorted, without those under another name of
// the set (which its suffix rule already matches).
func reduceDomains(set map[string]bool) []string {
	var out []string
	for d := range set {
		if !underAnother(d, set) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

func underAnother(d string, set map[string]bool) bool {
	for i := strings.IndexByte(d, '.'); i >= 0; i = strings.IndexByte(d, '.') {
		d = d[i+1:]
		if set[d] {
			return true
		}
	}
	return false
}

// reduceNetworks returns the prefixes sorted, without those inside another of
// the set. Sorted by address and then length, a prefix's sub-prefixes follow it
// directly, so one pass finds them.
func reduceNetworks(set map[netip.Prefix]bool) []netip.Prefix {
	all := make([]netip.Prefix, 0, len(set))
	for p := range set {
		all = append(all, p)
	}
	slices.SortFunc(all, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	var out []netip.Prefix
	for _, p := range all {
		if n := len(out); n > 0 && out[n-1].Contains(p.Addr()) && out[n-1].Bits() <= p.Bits() {
			continue
		}
		out = append(out, p)
	}
	return out
}
