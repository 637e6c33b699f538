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

// errDestinationDenied says every address of a destination is in a denied range.
var errDestinationDenied = errors.New("destination denied by access.deny_destinations or the proxy's own address")

// IsDenied reports whether err says a destination is denied by policy.
func IsDenied(err error) bool { return errors.Is(err, errDestinationDenied) }

// ResolveAllowed returns the destination's addresses that pol allows at port:
// the IP itself, or the name's addresses after resolution, so a name that resolves
// to a denied address is denied and a name resolving to a mix is dialled only on
// its allowed addresses. Port 0 leaves the proxy's own addresses to the caller.
// Errors: errDestinationDenied (see [IsDenied]) or the resolver's, wrapped.
func (c *Core) ResolveAllowed(ctx context.Context, pol *Policy, host string, ip netip.Addr, port uint16) ([]netip.Addr, error) {
	addrs := []netip.Addr{ip}
	if host != "" {
		var err error
		addrs, err = c.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve %q: %w", host, err)
		}
	}
	allowed := addrs[:0:0]
	for _, a := range addrs {
		if !c.DeniedDestination(pol, netip.AddrPortFrom(a, port)) {
			allowed = append(allowed, a.Unmap())
		}
	}
	if len(allowed) == 0 {
		return nil, errDestinationDenied
	}
	return allowed, nil
}
