package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sockshaper/sockshaper/internal/dscp"
	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/shaping"
)

// sniWait bounds how long a CONNECT to a bare IP waits for the client's first bytes
// to read a TLS server name: TLS clients send their ClientHello at once, and anything
// else loses at most this much latency on its first byte.
const sniWait = 300 * time.Millisecond

// Target is a destination as a client asked for it: a name, or an address, and a
// port.
type Target struct {
	Host string     // a name; empty when Addr is set
	Addr netip.Addr // an address; the zero Addr when Host is set
	Port uint16
}

// Dial is a TCP CONNECT's path through the core: the policy on the destination
// (a literal address at once, a name on every address it resolves to), the
// resolution, the app class (s.app), and the dial, under timeouts.dial. On
// success the destination socket is registered to close with the connection and
// s.dialled names it. A refusal has the session's result set; the front answers.
func (s *Session) Dial(t Target) (*net.TCPConn, Outcome) {
	pol := s.conn.pol
	if t.Host == "" {
		t.Addr = t.Addr.Unmap()
		if rule := s.core.DenyingRule(pol, netip.AddrPortFrom(t.Addr, t.Port)); rule != "" {
			return nil, s.denied(rule)
		}
	}
	ctx, cancel := context.WithTimeout(s.conn.ctx, pol.Config.Timeouts.Dial)
	defer cancel()
	addrs, err := s.core.ResolveAllowed(ctx, pol, t.Host, t.Addr, t.Port)
	if err != nil {
		if IsDenied(err) {
			return nil, s.denied(DeniedRuleOf(err))
		}
		s.log.Info("resolve failed", "destination", s.requested, "err", err)
		return nil, s.refuse(Outcome{Refusal: Unresolvable, Result: metrics.ResultDialFailed, Err: err})
	}
	s.app = pol.Classifier.Classify(shaping.Target{Transport: "tcp", Host: t.Host, Addr: addrs[0], Port: t.Port})
	toDest, toClient := pol.Classifier.Marks(s.app)
	target, err := s.dial(ctx, addrs, t.Port, toDest)
	if err != nil {
		s.log.Info("dial failed", "destination", s.requested, "err", err)
		return nil, s.refuse(Outcome{Refusal: dialRefusal(err), Result: metrics.ResultDialFailed, Err: err})
	}
	if !s.conn.AddCloser(target) {
		return nil, s.refuse(Outcome{Refusal: Gone, Result: metrics.ResultDialFailed, Err: net.ErrClosed})
	}
	s.dialled = target.RemoteAddr().String()
	s.markClient(toClient)
	return target, Outcome{}
}

// markClient marks the packets toward the client with the class's DSCP, if it
// has one (apps.CLASS.dscp_to_client): on its TCP socket, or the one its TLS
// connection runs on. A stream of a multiplexed connection shares its socket
// with the client's other streams, which the mark would reach too: it gets
// none. A mark that cannot be set costs nothing but the mark.
func (s *Session) markClient(m dscp.Mark) {
	if tc := tcpSocket(s.conn.nc); tc != nil && !m.IsZero() {
		if err := m.Set(tc); err != nil {
			s.log.Debug("dscp toward the client", "err", err)
		}
	}
}

// RuleConnectPorts names the HTTP fronts' refusal of a port outside
// http.connect_ports.
const RuleConnectPorts = "http.connect_ports"

// PortDenied records a destination a front refused for its port
// (http.connect_ports): destination_denied, with [RuleConnectPorts] as its
// rule in the log and the accounting line. The front answers.
func (s *Session) PortDenied() {
	s.rule = RuleConnectPorts
	s.Refuse(metrics.ResultDestinationDenied, "connect_port")
	s.log.Info("destination denied", "destination", s.requested, "rule", RuleConnectPorts)
}

// denied records a destination the policy refused, and the rule that did, for
// the log and the accounting line.
func (s *Session) denied(rule string) Outcome {
	s.rule = rule
	s.log.Info("destination denied", "destination", s.requested, "rule", rule)
	return s.refuse(Outcome{Refusal: Denied, Result: metrics.ResultDestinationDenied, Err: errDestinationDenied})
}

// dial tries each allowed address in turn until one connects or ctx ends, with
// its packets marked with mark (the app class's DSCP) from the first one.
func (s *Session) dial(ctx context.Context, addrs []netip.Addr, port uint16, mark dscp.Mark) (*net.TCPConn, error) {
	var d net.Dialer
	if !mark.IsZero() {
		d.Control = mark.Control
	}
	start := time.Now()
	var err error
	for _, a := range addrs {
		var c net.Conn
		c, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, port).String())
		if err == nil {
			s.core.rec.Dialed(metrics.DialOK, time.Since(start))
			return c.(*net.TCPConn), nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	s.core.rec.Dialed(metrics.DialFailed, time.Since(start))
	return nil, fmt.Errorf("dial: %w", err)
}

// ClassifyBySNI reads the client's first bytes when the destination was an
// address (dialled: the address connected to) and a TLS server name could change
// the session's class, and classifies again by it. The bytes read are returned
// after pending, so that they are relayed unchanged.
func (s *Session) ClassifyBySNI(t Target, dialled netip.AddrPort, pending []byte) []byte {
	cls := s.conn.pol.Classifier
	dest := shaping.Target{Transport: "tcp", Host: t.Host, Addr: dialled.Addr(), Port: t.Port}
	if !cls.WantsSNI(dest) {
		return pending
	}
	buf := make([]byte, len(pending), len(pending)+shaping.MaxClientHelloBytes)
	copy(buf, pending)
	nc := s.conn.nc
	nc.SetReadDeadline(time.Now().Add(sniWait))
	defer nc.SetReadDeadline(time.Time{})
	for len(buf) < cap(buf) {
		sni, err := shaping.ParseClientHelloSNI(buf)
		if !errors.Is(err, shaping.ErrIncomplete) {
			if sni != "" {
				dest.SNI = sni
				s.reclassifyConnect(cls.Classify(dest))
			}
			break
		}
		n, rerr := nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if rerr != nil {
			break
		}
	}
	return buf
}

// reclassifyConnect gives a CONNECT session the class its TLS server name
// chose, before it relays, and marks both of its sockets with that class's DSCP.
func (s *Session) reclassifyConnect(app string) {
	if app == s.app {
		return
	}
	s.app = app
	toDest, toClient := s.conn.pol.Classifier.Marks(app)
	s.conn.mu.Lock()
	closers := s.conn.closers
	s.conn.mu.Unlock()
	for _, c := range closers {
		if tc, ok := c.(*net.TCPConn); ok {
			toDest.Set(tc) // the destination socket (a zero mark leaves an earlier one)
		}
	}
	s.markClient(toClient)
}

// AddrPortOf converts a net.Addr of a TCP or UDP socket, with an IPv4-mapped
// IPv6 address (a dual-stack socket's IPv4 peer) in its IPv4 form, so that an
// IPv4 client is logged and matched as the IPv4 address it is.
func AddrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
