package tunnel

import "net/netip"

// maxEmbedded is the most IPv4 addresses embeddedIPv4 finds in one IPv6 address:
// the four places RFC 6052 allows for a prefix inside 64:ff9b:1::/48.
const maxEmbedded = 4

// IPv6 ranges whose addresses carry an IPv4 address that a gateway, a relay or
// the host's own stack may turn into IPv4 traffic to it.
var (
	// nat64WellKnown is the NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")
	// nat64Local is the local-use NAT64 range 64:ff9b:1::/48 (RFC 8215); an
	// operator picks a /48, /56, /64 or /96 inside it.
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	// sixToFour is 2002::/16 (RFC 3056): the relay's IPv4 is bits 16-47.
	sixToFour = netip.MustParsePrefix("2002::/16")
	// teredo is 2001::/32 (RFC 4380): the server's IPv4 is bits 32-63 and the
	// client's the last 32 bits, inverted.
	teredo = netip.MustParsePrefix("2001::/32")
	// compatible is the deprecated IPv4-compatible range ::/96 (RFC 4291 2.5.5.1),
	// which some stacks still send over an automatic tunnel.
	compatible = netip.MustParsePrefix("::/96")
	// siit is the IPv4-translated range ::ffff:0:0:0/96 (RFC 2765).
	siit = netip.MustParsePrefix("::ffff:0:0:0/96")
)

// embeddedIPv4 returns the IPv4 addresses an IPv6 address carries, in the forms
// above, so that policy can check them against the IPv4 rules. IPv4 and
// IPv4-mapped addresses carry none (the caller unmaps those). When the form does
// not say where the address sits (a local-use NAT64 prefix), every place it may
// sit is returned: a false refusal there costs less than a way around the deny
// list. Candidates in 0.0.0.0/8 are left out: they are the zero padding of
// another layout, and no gateway or relay forwards to "this network" (RFC 1122
// 3.2.1.3), so they cannot be reached this way. It allocates nothing.
func embeddedIPv4(a netip.Addr) (out [maxEmbedded]netip.Addr, n int) {
	if !a.Is6() || a.Is4In6() {
		return out, 0
	}
	b := a.As16()
	add := func(v4 [4]byte) {
		if v4[0] != 0 {
			out[n] = netip.AddrFrom4(v4)
			n++
		}
	}
	switch {
	case nat64WellKnown.Contains(a), siit.Contains(a), compatible.Contains(a):
		add([4]byte(b[12:16]))
	case nat64Local.Contains(a):
		// RFC 6052 section 2.2: bits 64-71 are zero, so the address of a /48 or
		// /56 prefix is split around byte 8.
		add([4]byte{b[6], b[7], b[9], b[10]})
		add([4]byte{b[7], b[9], b[10], b[11]})
		add([4]byte(b[9:13]))
		add([4]byte(b[12:16]))
	case sixToFour.Contains(a):
		add([4]byte(b[2:6]))
	case teredo.Contains(a):
		add([4]byte(b[4:8]))
		add([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
	}
	return out, n
}
