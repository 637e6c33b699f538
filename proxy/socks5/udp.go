package socks5

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
	"github.com/sockshaper/sockshaper/shaping"
)

// udpBufSize is room for a reply header and then for the largest UDP payload
// there is (the 16-bit length field bounds it below 64 KiB), so no datagram is
// ever truncated and one buffer serves both directions.
const udpBufSize = maxReplyHeader + 1<<16 - 1

// errControlData says the client sent bytes on the control connection of an
// association, which RFC 1928 gives no meaning.
var errControlData = errors.New("client sent data on the UDP ASSOCIATE control connection")

// associate serves UDP ASSOCIATE (RFC 1928 section 7): one UDP socket relays the
// client's datagrams out and the answers of the peers it sent to back, for as long
// as the control connection stays open. The session goroutine waits on the
// control connection; one more goroutine runs the relay, so an association costs
// two goroutines, as a CONNECT does.
//
// App label: bytes and buckets follow each datagram's class, so
// transferred_bytes_total{transport="udp"} measures each app's UDP traffic and,
// say, Teams media gets the skype limits. The session itself opens as "other",
// takes the first class its client sends to, and closes as the class that moved
// the most bytes (udp_class.go), so that sessions_active, sessions_total and the
// accounting line count a Teams call's media as a skype session.
func associate(s *tunnel.Session, req tunnel.Request, pending []byte) {
	if !s.Conn().Policy().Config.Access.UDPAssociate {
		reply(s, replyNotAllowed, metrics.ResultCommandRefused)
		return
	}
	if len(pending) > 0 {
		reply(s, replyGeneralFailure, metrics.ResultProtocolError)
		s.Log().Info("udp associate refused", "err", errControlData)
		return
	}
	if o := s.Admit(); !o.OK() {
		refuse(s, o)
		return
	}
	a, ok := newAssociation(s, req)
	if !ok {
		return
	}
	nc := s.Conn().Net()
	if err := writeReply(nc, replySucceeded, a.local); err != nil {
		a.release()
		s.Refuse(metrics.ResultProtocolError, "")
		return
	}
	s.Established()
	s.Open()
	s.Touch()
	ctlErr, relayErr := a.serve()
	s.Closing(closeReason(s, ctlErr, relayErr))
}

// newAssociation opens the relay socket on the address the client reached the
// proxy on, so that it is reachable wherever the control connection was (or on
// access.udp_advertise, behind a balancer that carries only TCP), and refuses the
// request when it cannot.
func newAssociation(s *tunnel.Session, req tunnel.Request) (*association, bool) {
	conn := s.Conn()
	sock, advertised, err := relaySocket(conn)
	if err != nil {
		reply(s, replyGeneralFailure, metrics.ResultDialFailed)
		s.Log().Warn("udp relay socket", "err", err)
		return nil, false
	}
	if !conn.AddCloser(sock) {
		return nil, false
	}
	writer, err := newUDPWriter(sock)
	if err != nil {
		reply(s, replyGeneralFailure, metrics.ResultDialFailed)
		s.Log().Warn("udp relay socket", "err", err)
		return nil, false
	}
	a := &association{
		sess:     s,
		core:     s.Core(),
		pol:      conn.Policy(),
		sock:     sock,
		local:    advertised,
		writer:   writer,
		clientIP: conn.Peer().Addr(),
		wantPort: req.Target.Port,
		peers:    make(map[netip.AddrPort]string),
		names:    make(map[string]resolvedName),
		leases:   make(map[string]*shaping.Lease),
	}
	if a.reader, err = newUDPReader(sock, a.relay); err != nil {
		reply(s, replyGeneralFailure, metrics.ResultDialFailed)
		s.Log().Warn("udp relay socket", "err", err)
		return nil, false
	}
	a.bytesByApp = make(map[string]int64, 2)
	a.up = udpCounter{sess: s, direction: metrics.DirectionUpload, byApp: a.bytesByApp}
	a.down = udpCounter{sess: s, direction: metrics.DirectionDownload, byApp: a.bytesByApp}
	s.Log().Debug("udp association", "relay", a.local.String(), "expected_port", a.wantPort)
	return a, true
}

// relaySocket opens an association's UDP socket and returns it with the address
// to advertise in the reply. Without access.udp_advertise, the socket is bound to
// the control connection's local address and advertises it. With it, the socket
// is bound to that address when the host has it, or else to every address of its
// family, and the reply names it with the socket's port.
func relaySocket(conn *tunnel.Conn) (*net.UDPConn, netip.AddrPort, error) {
	adv := conn.Policy().Config.Access.UDPAdvertiseAddr
	if !adv.IsValid() {
		local := tunnel.AddrPortOf(conn.Net().LocalAddr()).Addr()
		sock, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
		if err != nil {
			return nil, netip.AddrPort{}, err
		}
		return sock, tunnel.AddrPortOf(sock.LocalAddr()), nil
	}
	sock, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(adv, 0)))
	if err != nil {
		wildcard := netip.IPv6Unspecified()
		if adv.Is4() {
			wildcard = netip.IPv4Unspecified()
		}
		if sock, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(wildcard, 0))); err != nil {
			return nil, netip.AddrPort{}, err
		}
	}
	return sock, netip.AddrPortFrom(adv, tunnel.AddrPortOf(sock.LocalAddr()).Port()), nil
}

// serve runs the relay on a new goroutine and waits on the control connection on
// this one; whichever ends first ends the other. It returns both ends' errors, the
// control connection's first, for closeReason.
func (a *association) serve() (ctlErr, relayErr error) {
	conn := a.sess.Conn()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The relay goroutine ends the association's state itself, so that even a
		// panicking session goroutine, which does not wait for it, cannot give
		// back its leases while it still uses them. A batch being relayed when
		// the relay panics is left to the collector, never pooled again.
		defer a.end()
		defer a.core.Recover(conn)
		relayErr = a.run()
		conn.Abort()
	}()
	ctlErr = watchControl(a.sess)
	conn.Abort() // closes the relay socket, which ends run
	<-done
	return ctlErr, relayErr
}

// errIdle says no datagram moved either way for the idle timeout.
var errIdle = errors.New("idle timeout")

// watchControl blocks until the client closes the control connection (nil), sends
// anything on it, or no datagram moved either way for the idle timeout (errIdle).
func watchControl(s *tunnel.Session) error {
	conn := s.Conn()
	idle := conn.Policy().Config.Timeouts.Idle
	nc := conn.Net()
	var b [1]byte
	for {
		nc.SetReadDeadline(s.LastActivity().Add(idle))
		_, err := nc.Read(b[:])
		switch {
		case err == nil:
			return errControlData
		case errors.Is(err, io.EOF):
			return nil
		case tunnel.IsTimeout(err) && s.IdleFor(idle):
			return errIdle
		case tunnel.IsTimeout(err):
			// A datagram moved since the deadline was set: wait again from it.
		default:
			return err
		}
	}
}

// closeReason names why an association ended, from its two ends' errors.
func closeReason(s *tunnel.Session, ctlErr, relayErr error) string {
	if errors.Is(ctlErr, errIdle) {
		return tunnel.ReasonIdle
	}
	for _, err := range []error{ctlErr, relayErr} {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			s.Log().Debug("association error", "err", err)
			return tunnel.ReasonError
		}
	}
	return tunnel.ReasonEOF
}

// association is the relay side of one UDP ASSOCIATE. After newAssociation its
// fields belong to the relay goroutine, and to the session goroutine again once
// that has ended.
type association struct {
	sess     *tunnel.Session
	core     *tunnel.Core
	pol      *tunnel.Policy
	sock     *net.UDPConn
	local    netip.AddrPort // the relay's address, sent in the reply
	reader   *udpReader
	writer   *udpWriter
	clientIP netip.Addr
	wantPort uint16         // the port the request named; 0: unknown
	client   netip.AddrPort // the client's UDP source once known

	peers  map[netip.AddrPort]string // destinations sent to, with their class
	names  map[string]resolvedName
	leases map[string]*shaping.Lease // by app class, nil without a shaper: a handful per association

	up, down     udpCounter
	bytesByApp   map[string]int64 // reported bytes by class, both directions: udp_class.go
	drops        udpDrops
	deniedLogged bool
}

// udpDrops counts the datagrams an association dropped, by reason.
type udpDrops struct {
	header, policy, shaped, send, unsolicited int64
}

// end reports the last bytes and the drops, and releases what the association
// holds.
func (a *association) end() {
	a.up.flush()
	a.down.flush()
	a.settleClass()
	a.logDrops()
	a.release()
}

// release gives back the leases.
func (a *association) release() {
	for _, l := range a.leases {
		if l != nil {
			l.Release()
		}
	}
}

// dropped logs one dropped datagram at debug level. The check comes first so a
// flood of dropped datagrams costs no allocation while debug is off.
func (a *association) dropped(peer netip.AddrPort, reason string, err error) {
	if !a.sess.Log().Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	a.sess.Log().Debug("udp datagram dropped", "reason", reason, "peer", peer.String(), "err", err)
}

// logDrops sums up the association's drops in one line, when there were any.
func (a *association) logDrops() {
	d := a.drops
	if d == (udpDrops{}) {
		return
	}
	a.sess.Log().LogAttrs(context.Background(), slog.LevelInfo, "udp datagrams dropped",
		slog.Int64("bad_header", d.header), slog.Int64("denied", d.policy),
		slog.Int64("shaped", d.shaped), slog.Int64("send_failed", d.send),
		slog.Int64("unsolicited", d.unsolicited))
}

// udpReportEvery bounds how stale the byte metrics of a slow UDP flow get: a call
// of a few kB/s takes minutes to fill udpReportBytes.
const udpReportEvery = time.Second

// udpReportBytes batches byte counts before they reach the recorder, as the TCP
// relay does.
const udpReportBytes = 256 << 10

// udpCounter counts one direction's bytes: the session's total at once, the
// recorder's in batches of one app class, so metrics cost nothing per datagram.
type udpCounter struct {
	sess      *tunnel.Session
	direction string
	app       string
	n         int64
	since     time.Time
	byApp     map[string]int64 // shared by both directions
}

func (c *udpCounter) add(app string, n int) {
	now := time.Now()
	if app != c.app {
		c.flush()
		c.app = app
	}
	if c.n == 0 {
		c.since = now
	}
	c.n += int64(n)
	c.sess.Count(c.direction, int64(n))
	if c.n >= udpReportBytes || now.Sub(c.since) >= udpReportEvery {
		c.flush()
	}
}

func (c *udpCounter) flush() {
	if c.n > 0 {
		c.sess.Core().Recorder().Transferred(c.sess.User(), c.app, c.direction, metrics.TransportUDP, c.n)
		c.byApp[c.app] += c.n
		c.n = 0
	}
}
