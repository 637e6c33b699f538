package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"time"
)

// maxCalls caps -conns for udp-calls: each call holds three descriptors here
// (client socket, control connection, far end) and the proxy two.
const maxCalls = 10000

// udpCallOptions are the flags of the udp-calls scenario.
type udpCallOptions struct {
	frame  time.Duration // each end sends one datagram this often
	size   int           // payload bytes of a datagram
	warmup time.Duration // media flows this long before the measured phase
	drain  time.Duration // how long datagrams may still arrive after the last send
	far    netip.Addr    // where the far ends listen (a network the proxy classes as skype)
	rawFar string
}

// register adds the udp-calls flags to fs.
func (c *udpCallOptions) register(fs *flag.FlagSet, o *options) {
	fs.DurationVar(&c.frame, "frame", 20*time.Millisecond, "each end of a call sends one datagram this often, as a call's media does")
	fs.IntVar(&c.size, "size", 200, "payload bytes of a datagram, without the SOCKS5 UDP header")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "media flows this long before the measured phase (associations and far ends settled)")
	fs.DurationVar(&c.drain, "drain", 500*time.Millisecond, "after the last send, how long datagrams may still arrive before the rest count as lost")
	fs.StringVar(&c.rawFar, "far", "127.0.0.1", "address the far ends of the calls listen on (a loopback address the proxy's skype class matches)")
	fs.StringVar(&o.calls.usersFile, "users-file", "", "log in as the users of this htpasswd-style `FILE` (names only; the password is -password), one call each, round robin")
	fs.IntVar(&o.pid, "pid", 0, "proxy process id: its CPU, memory and descriptors (0: skip)")
}

// check parses -far and checks the bounds.
func (c *udpCallOptions) check(conns int) error {
	var err error
	if c.far, err = netip.ParseAddr(c.rawFar); err != nil || !c.far.Is4() {
		return fmt.Errorf("-far: want an IPv4 address, got %q", c.rawFar)
	}
	switch {
	case conns > maxCalls:
		return fmt.Errorf("-conns: want at most %d calls, got %d", maxCalls, conns)
	case c.frame < minFrame || c.frame > maxFrame:
		return fmt.Errorf("-frame: want %v to %v, got %v", minFrame, maxFrame, c.frame)
	case c.size < callStampLen || c.size > maxUDPSize:
		return fmt.Errorf("-size: want %d to %d bytes, got %d", callStampLen, maxUDPSize, c.size)
	case c.warmup < 0 || c.warmup > maxDuration || c.drain < 0 || c.drain > 10*time.Second:
		return errors.New("-warmup: want 0 to 10m; -drain: want 0 to 10s")
	}
	return nil
}
