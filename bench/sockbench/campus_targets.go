package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Target parameters of the campus scenario.
const (
	// echoTargets spreads the short sessions over this many echo addresses: each
	// session leaves its proxy-to-target connection in TIME_WAIT for 60 s, and one
	// destination address and port has only the ephemeral range (28,000 ports).
	echoTargets = 8
	// callFrame is the interval of a call's packets, TCP and UDP: 20 ms is the
	// packet time of voice codecs (Opus, SILK) in Skype and Teams.
	callFrame = 20 * time.Millisecond
)

// campusTargets are the servers of the campus scenario, each on the address of
// its population (see campusAddr).
type campusTargets struct {
	t        *targets
	download netip.AddrPort   // unpaced source: the students' long downloads
	echo     []netip.AddrPort // the short sessions' request/response
	bulk     netip.AddrPort   // unpaced source in the skype network
	call     netip.AddrPort   // source in the skype network paced by a rate the client sends
	udp      *udpEcho         // UDP echo on port 3478, skype by port alone
}

// startCampusTargets starts every target; Close stops them.
func startCampusTargets(log *slog.Logger) (*campusTargets, error) {
	ct := &campusTargets{t: &targets{log: log, conns: map[net.Conn]struct{}{}, counts: map[uint64]*atomic.Int64{}}}
	var err error
	listen := func(addr netip.Addr, serve func(net.Conn)) netip.AddrPort {
		var ap netip.AddrPort
		if err == nil {
			ap, err = ct.t.listenOn(addr, serve)
		}
		return ap
	}
	ct.download = listen(campusAddr(downloadNet, 0), ct.t.serveSource)
	ct.bulk = listen(campusAddr(callNet, 0), ct.t.serveSource)
	ct.call = listen(campusAddr(callNet, 0), serveCall)
	for i := range echoTargets {
		ct.echo = append(ct.echo, listen(campusAddr(echoNet, i), serveEcho))
	}
	if err == nil {
		ct.udp, err = startUDPEcho()
	}
	if err != nil {
		ct.Close()
		return nil, err
	}
	return ct, nil
}

// Close stops every target and waits for their handlers.
func (ct *campusTargets) Close() {
	ct.t.Close()
	if ct.udp != nil {
		ct.udp.Close()
	}
}

// listenOn serves TCP on addr (any port) with serve until Close.
func (t *targets) listenOn(addr netip.Addr, serve func(net.Conn)) (netip.AddrPort, error) {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		return netip.AddrPort{}, err
	}
	t.mu.Lock()
	t.lns = append(t.lns, ln)
	t.mu.Unlock()
	t.wg.Go(func() { t.accept(ln, serve) })
	return ln.Addr().(*net.TCPAddr).AddrPort(), nil
}

// serveCall reads a 4-byte big-endian rate in bytes/s, then writes a frame of
// that rate every callFrame until the connection fails: a call's media over
// TCP, paced by its sender. When the proxy does not read, the writes block and
// frames queue in the socket, so the source always has data waiting.
func serveCall(c net.Conn) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	frame := pattern(max(1, int(int64(binary.BigEndian.Uint32(hdr[:]))*int64(callFrame)/int64(time.Second))))
	tick := time.NewTicker(callFrame)
	defer tick.Stop()
	for range tick.C {
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}

// udpEcho writes every datagram back to its sender.
type udpEcho struct {
	conn  *net.UDPConn
	addr  netip.AddrPort
	done  sync.WaitGroup
	count atomic.Int64 // datagrams received
}

// startUDPEcho listens on udpCallPort of a random address of 127.78.0.0/16, so
// that concurrent runs on one machine do not collide.
func startUDPEcho() (*udpEcho, error) {
	var err error
	for range 20 {
		ip := campusAddr(udpNet, rand.IntN(maxAddrs))
		var conn *net.UDPConn
		conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, udpCallPort)))
		if err == nil {
			u := &udpEcho{conn: conn, addr: netip.AddrPortFrom(ip, udpCallPort)}
			u.done.Go(u.serve)
			return u, nil
		}
	}
	return nil, fmt.Errorf("UDP call target on port %d: %w", udpCallPort, err)
}

func (u *udpEcho) serve() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				continue // an ICMP error from a closed client port; keep serving
			}
			return
		}
		u.count.Add(1)
		u.conn.WriteToUDPAddrPort(buf[:n], from)
	}
}

// Close stops the echo and waits for it.
func (u *udpEcho) Close() {
	u.conn.Close()
	u.done.Wait()
}
