package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
)

// AllowedClient reports whether a client address is inside the allowed networks.
func AllowedClient(prefixes []netip.Prefix, a netip.Addr) bool {
	return inPrefixes(prefixes, a.Unmap())
}

// inPrefixes reports whether a is inside one of prefixes.
func inPrefixes(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Names of the rules that deny a destination besides deny_destinations'.
const (
	// RuleOwnListener is the proxy's own listeners, which no config can allow.
	RuleOwnListener = "proxy-listener"
	// ruleEmbedded prefixes the rule an IPv4 address an IPv6 address
	// carries falls under ("embedded-ipv4:loopback" for 64:ff9b::7f00:1).
	ruleEmbedded = "embedded-ipv4:"
)

// deniedRule returns the rule (rules[i] names denied[i]) that a, or an IPv4
// address it embeds, falls under, as deniedAddr decides; "" when none does.
// The narrowest range names it; an address itself before what it embeds.
// It allocates only to name an embedded address's rule.
func deniedRule(denied []netip.Prefix, rules []string, a netip.Addr) string {
	a = a.Unmap()
	if i := prefixIndex(denied, a); i >= 0 {
		return ruleAt(rules, i, denied)
	}
	emb, n := embeddedIPv4(a)
	for _, v4 := range emb[:n] {
		if i := prefixIndex(denied, v4); i >= 0 {
			return ruleEmbedded + ruleAt(rules, i, denied)
		}
	}
	return ""
}

// prefixIndex returns the index of the narrowest of prefixes that holds a
// (169.254.169.254 is metadata before it is link-local), or -1.
func prefixIndex(prefixes []netip.Prefix, a netip.Addr) int {
	best := -1
	for i, p := range prefixes {
		if p.Contains(a) && (best < 0 || p.Bits() > prefixes[best].Bits()) {
			best = i
		}
	}
	return best
}

// ruleAt names denied[i]: rules[i], or the prefix itself when the policy was
// built without rule names.
func ruleAt(rules []string, i int, denied []netip.Prefix) string {
	if i < len(rules) {
		return rules[i]
	}
	return denied[i].String()
}

// deniedAddr reports whether a, or an IPv4 address it embeds, is inside a denied
// range. IPv4-mapped addresses are checked as IPv4, so ::ffff:127.0.0.1 is
// loopback; the other forms that carry an IPv4 address to a gateway or a tunnel
// (embeddedIPv4) are checked against the IPv4 rules too, so that 64:ff9b::7f00:1
// through a NAT64, or 2002:7f00:1:: through a 6to4 relay, cannot reach what
// 127.0.0.1 cannot. It allocates nothing: the UDP relay calls it per datagram.
func deniedAddr(denied []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	if inPrefixes(denied, a) {
		return true
	}
	emb, n := embeddedIPv4(a)
	for _, v4 := range emb[:n] {
		if inPrefixes(denied, v4) {
			return true
		}
	}
	return false
}

// DeniedDestination reports whether dst may not be reached under pol: its address
// is denied (deniedAddr), or it is one of the proxy's own listeners, which no
// config can allow. A zero port checks the address only (the UDP relay caches a
// name's address and checks the port per datagram). It allocates nothing.
func (c *Core) DeniedDestination(pol *Policy, dst netip.AddrPort) bool {
	return deniedAddr(pol.Config.Access.DeniedPrefixes, dst.Addr()) || c.own.contains(dst)
}

// DenyingRule returns the rule that denies dst under pol, as
// [Core.DeniedDestination] decides: a deny_destinations entry ("loopback",
// "127.0.0.2/32"), an IPv4 rule an embedding IPv6 address falls under
// ("embedded-ipv4:loopback"), or [RuleOwnListener]; "" when dst is allowed.
// It allocates nothing for an allowed destination.
func (c *Core) DenyingRule(pol *Policy, dst netip.AddrPort) string {
	if r := deniedRule(pol.Config.Access.DeniedPrefixes, pol.Config.Access.DeniedRules, dst.Addr()); r != "" {
		return r
	}
	if c.own.contains(dst) {
		return RuleOwnListener
	}
	return ""
}

// errDestinationDenied says every address of a destination is in a denied range.
var errDestinationDenied = errors.New("destination denied by access.deny_destinations or the proxy's own address")

// DeniedError is [Core.ResolveAllowed]'s error when every address of a
// destination is denied: Rule names the rule that denied the first.
type DeniedError struct{ Rule string }

func (e *DeniedError) Error() string { return errDestinationDenied.Error() + " (rule " + e.Rule + ")" }

// Is makes a DeniedError match [IsDenied].
func (e *DeniedError) Is(target error) bool { return target == errDestinationDenied }

// IsDenied reports whether err says a destination is denied by policy.
func IsDenied(err error) bool { return errors.Is(err, errDestinationDenied) }

// DeniedRuleOf returns the rule a [DeniedError] in err's chain names, or "".
func DeniedRuleOf(err error) string {
	if d, ok := errors.AsType[*DeniedError](err); ok {
		return d.Rule
	}
	return ""
}

// ResolveAllowed returns the destination's addresses that pol allows at port:
// the IP itself, or the name's addresses after resolution, so a name that resolves
// to a denied address is denied and a name resolving to a mix is dialled only on
// its allowed addresses. Port 0 leaves the proxy's own addresses to the caller.
// Errors: a *[DeniedError] (see [IsDenied]) or the resolver's, wrapped.
func (c *Core) ResolveAllowed(ctx context.Context, pol *Policy, host string, ip netip.Addr, port uint16) ([]netip.Addr, error) {
	addrs := []netip.Addr{ip}
	if host != "" {
		var err error
		addrs, err = c.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve %q: %w", host, err)
		}
	}
	allowed, rule := addrs[:0:0], ""
	for _, a := range addrs {
		if r := c.DenyingRule(pol, netip.AddrPortFrom(a, port)); r == "" {
			allowed = append(allowed, a.Unmap())
		} else if rule == "" {
			rule = r
		}
	}
	if len(allowed) == 0 {
		return nil, &DeniedError{Rule: rule}
	}
	return allowed, nil
}
