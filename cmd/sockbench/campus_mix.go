package main

import (
	"fmt"
	"math"
	"net/netip"
)

// The campus lives on 127.0.0.0/8, each population on a /16 of its own, so that
// the proxy's per-address logic sees a campus: users behind shared (NAT)
// addresses, attackers on theirs, and targets the config can classify.
const (
	userNet     = 10 // 127.10.x.y: the users, -users-per-addr behind each address
	echoNet     = 20 // 127.20.0.y: echo targets of the short sessions
	downloadNet = 30 // 127.30.0.1: the source of the long downloads (app class other)
	guessNet    = 66 // 127.66.0.y: password guessers
	callNet     = 77 // 127.77.0.1: skype-class TCP targets (the config's skype network)
	udpNet      = 78 // 127.78.x.y:3478: the UDP call target, classified by port alone
	slowNet     = 99 // 127.99.0.y: slowloris connections
	// maxAddrs is how many addresses campusAddr numbers in one /16.
	maxAddrs = 254 * 256
)

// campusAddr returns the i-th address (from 0) of the /16 127.net.0.0, skipping
// the .0 of each /24.
func campusAddr(net byte, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, net, byte(i / 254), byte(i%254 + 1)})
}

// callRatesKbit are the rates of call flows: caller j's TCP flow runs at
// callRatesKbit[j%4] and its UDP flow at callRatesKbit[(j+2)%4], so every rate
// appears on both transports and callers offer 256 or 384 kbit/s in all.
var callRatesKbit = [...]int64{64, 128, 192, 256}

// role is what a user does besides browsing, which every user does.
type role int

const (
	roleBrowse role = iota
	roleHeavy
	roleDownload
	roleCall
	roleBulk
)

// browsePop names the browsing of a user of role r in error kinds: a user's
// short sessions share its buckets with its long flows.
func (r role) browsePop() string {
	switch r {
	case roleHeavy:
		return "browse (heavy user)"
	case roleDownload:
		return "browse (downloader)"
	case roleCall:
		return "browse (caller)"
	case roleBulk:
		return "browse (skype bulk user)"
	}
	return "browse"
}

// campusMix is who does what: the users, their addresses and roles.
type campusMix struct {
	users     []string
	addr      []netip.Addr // by user index
	role      []role       // by user index
	heavy     []int        // user indexes by role
	download  []int
	call      []int
	bulk      []int
	heavySess int
	dlSess    int
}

// newMix assigns roles in blocks (heavy, downloaders, callers, bulk, the rest
// only browse) and addresses round robin, so users of one role are spread over
// the addresses and each address mixes roles as a NAT does.
func newMix(users []string, c *campusOptions) (*campusMix, error) {
	n := len(users)
	naddr := (n + c.perAddr - 1) / c.perAddr
	if naddr > maxAddrs {
		return nil, fmt.Errorf("%d users at %d per address need %d addresses; at most %d", n, c.perAddr, naddr, maxAddrs)
	}
	m := &campusMix{users: users, addr: make([]netip.Addr, n), role: make([]role, n),
		heavySess: c.heavySess, dlSess: c.dlSess}
	counts := []struct {
		r    role
		n    int
		list *[]int
	}{{roleHeavy, c.heavy, &m.heavy}, {roleDownload, share(c.dlFrac, n), &m.download},
		{roleCall, share(c.callFrac, n), &m.call}, {roleBulk, share(c.bulkFrac, n), &m.bulk}}
	next := 0
	for _, cnt := range counts {
		if next+cnt.n > n {
			return nil, fmt.Errorf("%d users are too few for %d heavy users and the shares of -downloaders, -callers and -skype-bulk", n, c.heavy)
		}
		for range cnt.n {
			m.role[next] = cnt.r
			*cnt.list = append(*cnt.list, next)
			next++
		}
	}
	for i := range users {
		m.addr[i] = campusAddr(userNet, i%naddr)
	}
	return m, nil
}

// share returns frac of n, rounded, and at least 1 when frac is not 0.
func share(frac float64, n int) int {
	k := int(math.Round(frac * float64(n)))
	if frac > 0 && k == 0 {
		k = 1
	}
	return k
}

// callRates returns the TCP and UDP rates of call j, in bytes/s.
func callRates(j int) (tcp, udp int64) {
	return callRatesKbit[j%4] * 1000 / 8, callRatesKbit[(j+2)%4] * 1000 / 8
}

// demand is one user's long-lived download in the water-filling of the global
// bucket: its sessions and the most the user may get (its own limit, or what a
// paced source offers).
type demand struct {
	sessions int
	cap      float64
}

// demands returns the long-lived downloads of every heavy, download, bulk and
// call user in that order, capped by the student and skype per-user rates
// (bytes/s; 0 is unlimited).
func (m *campusMix) demands(student, skype float64) []demand {
	capped := func(rate float64, limits ...float64) float64 {
		for _, l := range limits {
			if l > 0 {
				rate = min(rate, l)
			}
		}
		return rate
	}
	var ds []demand
	for range m.heavy {
		ds = append(ds, demand{m.heavySess, capped(math.Inf(1), student)})
	}
	for range m.download {
		ds = append(ds, demand{m.dlSess, capped(math.Inf(1), student)})
	}
	for range m.bulk {
		ds = append(ds, demand{1, capped(math.Inf(1), student, skype)})
	}
	for j := range m.call {
		tcp, udp := callRates(j)
		ds = append(ds, demand{2, capped(float64(tcp+udp), student, skype)})
	}
	return ds
}

// waterFill returns each demand's expected rate when the global rate (bytes/s; 0
// or less is unlimited) is shared per session, max-min fair, with each demand
// capped: the global bucket serves sessions one chunk at a time, first come,
// first served. An uncapped demand without a global limit gets +Inf.
func waterFill(ds []demand, global float64) []float64 {
	out := make([]float64, len(ds))
	total := 0.0
	for _, d := range ds {
		total += d.cap
	}
	level := math.Inf(1)
	if global > 0 && total > global {
		lo, hi := 0.0, global
		for range 100 {
			mid := (lo + hi) / 2
			if filled(ds, mid) > global {
				hi = mid
			} else {
				lo = mid
			}
		}
		level = lo
	}
	for i, d := range ds {
		out[i] = min(d.cap, float64(d.sessions)*level)
	}
	return out
}

// filled is the total rate of ds at a per-session level.
func filled(ds []demand, level float64) float64 {
	sum := 0.0
	for _, d := range ds {
		sum += min(d.cap, float64(d.sessions)*level)
	}
	return sum
}
