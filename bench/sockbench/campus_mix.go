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
	keepNet     = 88 // 127.88.0.y: unauthenticated HTTP keep-alive connections
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
	roleHog
	roleHeavy
	roleDownload
	roleCall
	roleBulk
)

// browsePop names the browsing of a user of role r in error kinds: a user's
// short sessions share its buckets with its long flows.
func (r role) browsePop() string {
	switch r {
	case roleHog:
		return "browse (hog)"
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
	hog       []int        // user indexes by role
	heavy     []int
	download  []int
	call      []int
	bulk      []int
	hogSess   int
	heavySess int
	dlSess    int
}

// newMix assigns roles in blocks (hogs, heavy, downloaders, callers, bulk, the
// rest only browse) and addresses round robin, so users of one role are spread over
// the addresses and each address mixes roles as a NAT does.
func newMix(users []string, c *campusOptions) (*campusMix, error) {
	n := len(users)
	naddr := (n + c.perAddr - 1) / c.perAddr
	if naddr > maxAddrs {
		return nil, fmt.Errorf("%d users at %d per address need %d addresses; at most %d", n, c.perAddr, naddr, maxAddrs)
	}
	m := &campusMix{users: users, addr: make([]netip.Addr, n), role: make([]role, n),
		hogSess: c.hogSess, heavySess: c.heavySess, dlSess: c.dlSess}
	counts := []struct {
		r    role
		n    int
		list *[]int
	}{{roleHog, c.hogs, &m.hog}, {roleHeavy, c.heavy, &m.heavy}, {roleDownload, share(c.dlFrac, n), &m.download},
		{roleCall, share(c.callFrac, n), &m.call}, {roleBulk, share(c.bulkFrac, n), &m.bulk}}
	next := 0
	for _, cnt := range counts {
		if next+cnt.n > n {
			return nil, fmt.Errorf("%d users are too few for %d hogs, %d heavy users and the shares of -downloaders, -callers and -skype-bulk", n, c.hogs, c.heavy)
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

// demands returns the most each user with long-lived downloads may get
// (bytes/s; +Inf: no limit of their own), by role in the order hogs, heavy,
// download, bulk, call: their own limit (own, by user index), the skype
// per-user rate for skype flows, and what a caller's paced sources offer.
func (m *campusMix) demands(own func(user int) float64, skype float64) []float64 {
	capped := func(rate float64, limits ...float64) float64 {
		for _, l := range limits {
			if l > 0 {
				rate = min(rate, l)
			}
		}
		return rate
	}
	var ds []float64
	for _, users := range [][]int{m.hog, m.heavy, m.download} {
		for _, u := range users {
			ds = append(ds, capped(math.Inf(1), own(u)))
		}
	}
	for _, u := range m.bulk {
		ds = append(ds, capped(math.Inf(1), own(u), skype))
	}
	for j, u := range m.call {
		tcp, udp := callRates(j)
		ds = append(ds, capped(float64(tcp+udp), own(u), skype))
	}
	return ds
}

// waterFill returns each user's expected rate when the global rate (bytes/s; 0
// or less is unlimited) is shared max-min fairly between users, whatever their
// numbers of sessions, each user capped by their demand: the global bucket
// serves users in rotation. An uncapped demand without a global limit gets
// +Inf.
func waterFill(ds []float64, global float64) []float64 {
	level := waterLevel(ds, global)
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = min(d, level)
	}
	return out
}

// waterLevel returns the per-user level at which ds fill the global rate:
// +Inf when it does not bind (0 or less, or above what ds want together).
func waterLevel(ds []float64, global float64) float64 {
	if global <= 0 || filled(ds, math.Inf(1)) <= global {
		return math.Inf(1)
	}
	lo, hi := 0.0, global
	for range 100 {
		mid := (lo + hi) / 2
		if filled(ds, mid) > global {
			hi = mid
		} else {
			lo = mid
		}
	}
	return lo
}

// filled is the total rate of ds at a per-user level.
func filled(ds []float64, level float64) float64 {
	sum := 0.0
	for _, d := range ds {
		sum += min(d, level)
	}
	return sum
}
