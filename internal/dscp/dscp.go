// Package dscp marks a traffic class's packets with a Differentiated Services
// code point, so that the campus network can prioritise (or deprioritise) them:
// a TCP socket for every packet it sends ([Mark.Set], [Mark.Control]), and a UDP
// datagram at a time ([Mark.WriteTo]), because one UDP relay socket carries
// datagrams of several classes.
//
// A socket is marked through IP_TOS, and through IPV6_TCLASS as well when it is
// an IPv6 socket, since a dual-stack socket sends IPv4-mapped destinations as
// IPv4. A datagram carries both as control messages of one sendmsg(2); Linux
// reads the one of the family the datagram leaves by and ignores the other.
package dscp

import (
	"net"
	"net/netip"
	"syscall"

	"github.com/sockshaper/sockshaper/configs"
)

// Mark is a code point ready to apply. The zero Mark marks nothing: its
// methods leave sockets and datagrams as they are. Build marks once per config
// (with [New]), not per packet: a Mark holds the datagram control messages.
type Mark struct {
	dscp configs.DSCP
	oob  []byte // IP_TOS and IPV6_TCLASS control messages; nil for the zero Mark
}

// New returns the Mark of code point d; New(0) is the zero Mark.
func New(d configs.DSCP) Mark {
	if d == 0 {
		return Mark{}
	}
	return Mark{dscp: d, oob: controlMessages(d.TOS())}
}

// DSCP returns the code point; 0 for the zero Mark.
func (m Mark) DSCP() configs.DSCP { return m.dscp }

// IsZero reports whether m marks nothing.
func (m Mark) IsZero() bool { return m.dscp == 0 }

// Set marks every packet c sends from now on: a *net.TCPConn once dialled or
// accepted (the reply direction toward a client), or a *net.UDPConn whose
// datagrams are all of one class. Packets already queued keep their mark.
func (m Mark) Set(c syscall.Conn) error {
	if m.IsZero() {
		return nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return m.Control("", "", rc)
}

// Control marks a socket before it connects, so that the handshake is marked
// too: use it as (or call it from) a [net.Dialer]'s Control function.
func (m Mark) Control(_, _ string, c syscall.RawConn) error {
	if m.IsZero() {
		return nil
	}
	var serr error
	if err := c.Control(func(fd uintptr) { serr = setTOS(int(fd), m.dscp.TOS()) }); err != nil {
		return err
	}
	return serr
}

// WriteTo sends the datagram b to dst from c, marked with m, in one system
// call, and allocates nothing. The zero Mark sends it unmarked, as
// [net.UDPConn.WriteToUDPAddrPort] does.
func (m Mark) WriteTo(c *net.UDPConn, b []byte, dst netip.AddrPort) (int, error) {
	if m.oob == nil {
		return c.WriteToUDPAddrPort(b, dst)
	}
	n, _, err := c.WriteMsgUDPAddrPort(b, m.oob, dst)
	return n, err
}
