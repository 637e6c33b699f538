package tunnel

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ownAddrs are the proxy's own listeners (its SOCKS port and the admin endpoint),
// which are never a destination whatever the config allows: a CONNECT to the
// proxy itself would chain sessions into a loop that eats the session budget, and
// one to the admin endpoint would hand /metrics and pprof to any client. The zero
// value holds none and is ready to use; it is safe for concurrent use.
type ownAddrs struct {
	set atomic.Pointer[[]netip.AddrPort] // copy on write; read per datagram

	mu      sync.Mutex
	local   []netip.Addr // the host's addresses, for wildcard listeners
	localAt time.Time
}

// localAddrsTTL is how long the host's interface addresses are reused: listing
// them is a netlink dump, too much for every datagram to the proxy's port, and an
// address added by DHCP is picked up this much later.
const localAddrsTTL = 5 * time.Second

// add records a listener's address. An unspecified address (a wildcard listener)
// stands for every local address at its port.
func (o *ownAddrs) add(ap netip.AddrPort) {
	if !ap.IsValid() || ap.Port() == 0 {
		return
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	for {
		old := o.set.Load()
		var next []netip.AddrPort
		if old != nil {
			if slices.Contains(*old, ap) {
				return
			}
			next = slices.Clone(*old)
		}
		next = append(next, ap)
		if o.set.CompareAndSwap(old, &next) {
			return
		}
	}
}

// contains reports whether dst reaches one of the listeners: dst's address, or
// an IPv4 address it embeds, is the listener's (any local one for a wildcard
// listener; the unspecified address, which the kernel sends to the local host,
// counts as local) at the listener's port. It allocates nothing unless dst has
// a listener's port and a wildcard listener needs the host's addresses.
func (o *ownAddrs) contains(dst netip.AddrPort) bool {
	set := o.set.Load()
	if set == nil || dst.Port() == 0 {
		return false
	}
	a := dst.Addr().Unmap()
	for _, own := range *set {
		if own.Port() != dst.Port() {
			continue
		}
		if o.reaches(own.Addr(), a) {
			return true
		}
		emb, n := embeddedIPv4(a)
		for _, v4 := range emb[:n] {
			if o.reaches(own.Addr(), v4) {
				return true
			}
		}
	}
	return false
}

// reaches reports whether a connection to a arrives at a listener on listen.
func (o *ownAddrs) reaches(listen, a netip.Addr) bool {
	switch {
	case a == listen, a.IsUnspecified():
		return true
	case !listen.IsUnspecified():
		return false
	case a.IsLoopback():
		return true
	}
	return slices.Contains(o.localAddrs(), a)
}

// localAddrs returns the host's interface addresses, refreshed every
// localAddrsTTL. A failed listing keeps the last one.
func (o *ownAddrs) localAddrs() []netip.Addr {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.local != nil && time.Since(o.localAt) < localAddrsTTL {
		return o.local
	}
	o.localAt = time.Now()
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return o.local
	}
	local := make([]netip.Addr, 0, len(ifAddrs))
	for _, ia := range ifAddrs {
		if p, ok := ia.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(p.IP); ok {
				local = append(local, a.Unmap())
			}
		}
	}
	o.local = local
	return local
}
