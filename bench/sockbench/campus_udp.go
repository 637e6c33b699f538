package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// cmdAssociate is SOCKS5's UDP ASSOCIATE command.
const cmdAssociate = 0x03

// udpHeaderLen is the SOCKS5 UDP header in front of an IPv4 datagram: RSV(2),
// FRAG, ATYP, address(4), port(2).
const udpHeaderLen = 10

// udpAssoc is a client's UDP association: the control connection that keeps it
// alive, the client's UDP socket and the proxy's relay address.
type udpAssoc struct {
	ctl   net.Conn
	sock  *net.UDPConn
	relay netip.AddrPort
	once  sync.Once
}

func (a *udpAssoc) close() {
	a.once.Do(func() {
		a.ctl.Close()
		a.sock.Close()
	})
}

// runUDPCall associates as f's user and sends a frame of f's rate every
// callFrame to the UDP echo target, counting what comes back, until ctx ends or
// the proxy ends the association.
func (cs *campus) runUDPCall(ctx context.Context, f *flow, slot openSlot) error {
	slot.acquire()
	a, err := cs.associate(ctx, f.user)
	slot.release()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, a.close)
	defer stop()
	f.opened.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Go(func() { a.send(f, cs.targets.udp.addr) })
	wg.Go(func() { a.receive(f) })
	var b [1]byte
	_, err = a.ctl.Read(b[:]) // the proxy sends nothing on the control connection
	if err == nil {
		err = errors.New("data on the control connection")
	}
	a.close()
	wg.Wait()
	return &stepError{"io", err}
}

// associate opens a UDP association as user from the user's address. The UDP
// socket is bound to that address too: the proxy accepts datagrams only from
// the control connection's address.
func (cs *campus) associate(ctx context.Context, user int) (*udpAssoc, error) {
	from := cs.mix.addr[user]
	sock, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)))
	if err != nil {
		return nil, &stepError{"dial", err}
	}
	t0 := time.Now()
	nd := net.Dialer{Timeout: cs.o.timeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))}
	ctl, err := nd.DialContext(ctx, "tcp", cs.o.proxy)
	if err != nil {
		sock.Close()
		return nil, &stepError{"dial", err}
	}
	a := &udpAssoc{ctl: ctl, sock: sock}
	ctl.SetDeadline(time.Now().Add(cs.o.timeout))
	if a.relay, err = associateHandshake(ctl, cs.cred(user), addrPortOf(sock.LocalAddr())); err != nil {
		a.close()
		return nil, err
	}
	ctl.SetDeadline(time.Time{})
	if a.relay.Addr().IsUnspecified() {
		a.relay = netip.AddrPortFrom(addrPortOf(ctl.RemoteAddr()).Addr(), a.relay.Port())
	}
	cs.events.login(time.Since(t0))
	return a, nil
}

// associateHandshake negotiates, logs in and asks for an association whose
// datagrams come from local; it returns the relay address of the reply.
// A credential without a user offers no authentication.
func associateHandshake(rw io.ReadWriter, c credential, local netip.AddrPort) (netip.AddrPort, error) {
	method := byte(methodPassword)
	if c.user == "" {
		method = methodNoAuth
	}
	if err := greet(rw, method); err != nil {
		return netip.AddrPort{}, &stepError{"greeting", err}
	}
	if method == methodPassword {
		if err := authenticate(rw, c); err != nil {
			return netip.AddrPort{}, &stepError{"auth", err}
		}
	}
	req := []byte{socksVersion, cmdAssociate, 0, atypIPv4}
	req = append(req, local.Addr().Unmap().AsSlice()...)
	req = binary.BigEndian.AppendUint16(req, local.Port())
	if _, err := rw.Write(req); err != nil {
		return netip.AddrPort{}, &stepError{"connect", err}
	}
	relay, err := readBound(rw)
	if err != nil {
		return netip.AddrPort{}, &stepError{"connect", err}
	}
	return relay, nil
}

// readBound reads a reply and returns its bound address.
func readBound(r io.Reader) (netip.AddrPort, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return netip.AddrPort{}, err
	}
	if head[1] != 0 {
		return netip.AddrPort{}, replyError(head[1])
	}
	var n int
	switch head[3] {
	case atypIPv4:
		n = 4
	case atypIPv6:
		n = 16
	default:
		return netip.AddrPort{}, fmt.Errorf("reply address type %#02x", head[3])
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(r, b); err != nil {
		return netip.AddrPort{}, err
	}
	addr, _ := netip.AddrFromSlice(b[:n])
	return netip.AddrPortFrom(addr.Unmap(), binary.BigEndian.Uint16(b[n:])), nil
}

// send writes a frame of f's rate to the relay every callFrame, addressed to to,
// until the socket is closed.
func (a *udpAssoc) send(f *flow, to netip.AddrPort) {
	msg := []byte{0, 0, 0, atypIPv4}
	msg = append(msg, to.Addr().AsSlice()...)
	msg = binary.BigEndian.AppendUint16(msg, to.Port())
	payload := max(1, int(f.offered*int64(callFrame)/int64(time.Second)))
	msg = append(msg, pattern(payload)...)
	tick := time.NewTicker(callFrame)
	defer tick.Stop()
	for range tick.C {
		if _, err := a.sock.WriteToUDPAddrPort(msg, a.relay); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a refused send (ICMP from a relay that went away): the control connection tells
		}
		f.sent.Add(int64(payload))
	}
}

// receive counts the payload of every datagram the relay sends back.
func (a *udpAssoc) receive(f *flow) {
	buf := make([]byte, 2048)
	for {
		n, _, err := a.sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n > udpHeaderLen {
			f.bytes.Add(int64(n - udpHeaderLen))
		}
	}
}

// addrPortOf returns a net.Addr's address and port, or the zero AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}
