package proxy

import (
	"context"
	"fmt"
	"net/netip"
)

// allowedClient reports whether a client address is inside the allowed networks.
func allowedClient(prefixes []netip.Prefix, a netip.Addr) bool {
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

// deniedDestination reports whether dst may not be reached: its address is denied
// (deniedAddr), or it is one of the proxy's own listeners, which no config can
// allow. A zero port checks the address only (the UDP relay caches a name's
// address and checks the port per datagram).
func (s *Server) deniedDestination(denied []netip.Prefix, dst netip.AddrPort) bool {
	return deniedAddr(denied, dst.Addr()) || s.own.contains(dst)
}

// errDestinationDenied says every address of a destination is in a denied range.
var errDestinationDenied = fmt.Errorf("destination denied by access.deny_destinations or the proxy's own address")

// resolveAllowed returns the destination's addresses that policy allows at port:
// the IP itself, or the name's addresses after resolution, so a name that resolves
// to a denied address is denied and a name resolving to a mix is dialled only on
// its allowed addresses. Port 0 leaves the proxy's own addresses to the caller.
func (s *Server) resolveAllowed(ctx context.Context, denied []netip.Prefix, host string, ip netip.Addr, port uint16) ([]netip.Addr, error) {
	addrs := []netip.Addr{ip}
	if host != "" {
		var err error
		addrs, err = s.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve %q: %w", host, err)
		}
	}
	allowed := addrs[:0:0]
	for _, a := range addrs {
		if !s.deniedDestination(denied, netip.AddrPortFrom(a, port)) {
			allowed = append(allowed, a.Unmap())
		}
	}
	if len(allowed) == 0 {
		return nil, errDestinationDenied
	}
	return allowed, nil
}
