package proxy

import (
	"context"
	"fmt"
	"net/netip"
)

// allowedClient reports whether a client address is inside the allowed networks.
func allowedClient(prefixes []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// deniedDestination reports whether a is inside a denied range. IPv4-mapped IPv6
// addresses are checked as IPv4, so ::ffff:127.0.0.1 is loopback too.
func deniedDestination(denied []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range denied {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// errDestinationDenied says every address of a destination is in a denied range.
var errDestinationDenied = fmt.Errorf("destination denied by access.deny_destinations")

// resolveAllowed returns the destination's addresses that policy allows: the IP
// itself, or the name's addresses after resolution, so a name that resolves to a
// denied address is denied and a name resolving to a mix is dialled only on its
// allowed addresses.
func (s *Server) resolveAllowed(ctx context.Context, denied []netip.Prefix, host string, ip netip.Addr) ([]netip.Addr, error) {
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
		if !deniedDestination(denied, a) {
			allowed = append(allowed, a.Unmap())
		}
	}
	if len(allowed) == 0 {
		return nil, errDestinationDenied
	}
	return allowed, nil
}
