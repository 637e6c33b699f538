package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
	"github.com/sockshaper/sockshaper/shaping"
)

// proxyHeaderWait bounds the wait for a balancer's PROXY header, within the
// handshake timeout: HAProxy sends it as soon as it has connected, before the
// client's first byte.
const proxyHeaderWait = 3 * time.Second

var (
	errNoProxyHeader  = errors.New("a trusted balancer's connection did not start with a PROXY header")
	errProxyNotStream = errors.New("the PROXY header names no TCP client address")
)

// fromBalancer reports whether peer is a load balancer trusted to send PROXY
// headers.
func (s *Server) fromBalancer(peer netip.AddrPort) bool {
	trusted := s.core.Policy().Config.Access.ProxyProtocol.TrustedPrefixes
	return len(trusted) > 0 && tunnel.AllowedClient(trusted, peer.Addr())
}

// serveBalanced reads a balancer's PROXY header off the raw socket (so that the
// splicer keeps a plain TCP connection) under the header's wait, then admits and
// serves the client the header names as if it had connected itself. A balancer's
// connection without a header, or with a bad one, is closed and counted as a
// protocol error; a LOCAL header (a balancer's health check) is closed quietly.
func (s *Server) serveBalanced(nc net.Conn, balancer netip.AddrPort, kind *listenerKind) {
	wait := min(s.Config().Timeouts.Handshake, proxyHeaderWait)
	nc.SetDeadline(time.Now().Add(wait))
	hr := &handshakeReader{nc: nc}
	hr.br = tunnel.GetReader(hr)
	peer, err := readProxyHeader(hr.br)
	if err != nil || !peer.IsValid() {
		tunnel.PutReader(hr.br)
		nc.Close()
		if err != nil {
			s.rec.SessionRejected(metrics.FrontNone, metrics.CommandNone, shaping.Other, metrics.ResultProtocolError)
			s.log.Info("balancer connection refused", "balancer", balancer.String(), "err", err)
		}
		return
	}
	if c := s.accept(nc, peer, hr, kind); c != nil {
		s.serve(c, kind)
		return
	}
	tunnel.PutReader(hr.br)
}

// readProxyHeader reads a PROXY header (version 1 or 2) and returns the client's
// address it names, IPv4 in IPv4 form; the zero AddrPort for a LOCAL header (no
// client: a health check).
func readProxyHeader(br *bufio.Reader) (netip.AddrPort, error) {
	if err := bufferV1Line(br); err != nil {
		return netip.AddrPort{}, fmt.Errorf("PROXY header: %w", err)
	}
	h, err := proxyproto.Read(br)
	if errors.Is(err, proxyproto.ErrNoProxyProtocol) {
		return netip.AddrPort{}, errNoProxyHeader
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("PROXY header: %w", err)
	}
	if h.Command.IsLocal() {
		return netip.AddrPort{}, nil
	}
	src, _, ok := h.TCPAddrs()
	if !ok {
		return netip.AddrPort{}, errProxyNotStream
	}
	return tunnel.AddrPortOf(src), nil
}

// maxV1Header is the longest PROXY version 1 header, its CRLF included (the
// specification's worst case, "PROXY UNKNOWN" with two full IPv6 addresses and
// ports).
const maxV1Header = 107

// bufferV1Line waits until br holds the whole line of a version 1 header (or
// maxV1Header bytes without its end, for the parser to refuse), under the
// connection's deadline. go-proxyproto refuses a version 1 header that did not
// arrive in one read, but a balancer's header may cross two TCP segments as any
// bytes may; version 2 headers, read by length, are taken whole already.
func bufferV1Line(br *bufio.Reader) error {
	b, err := br.Peek(1)
	if err != nil || b[0] != proxyproto.SIGV1[0] {
		return nil // nothing to wait for; the parser says what it is
	}
	for {
		b, err := br.Peek(br.Buffered())
		if bytes.IndexByte(b, '\n') >= 0 || len(b) >= maxV1Header {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return err
		}
	}
}

// hasProxyHeader reports whether the client starts with a PROXY header's
// signature, which only a trusted balancer may send. It peeks past the first byte
// only when that byte can start one ('P' for version 1, '\r' for version 2), so
// that short SOCKS5 messages are never waited on.
func hasProxyHeader(br *bufio.Reader) bool {
	b, _ := br.Peek(1)
	switch {
	case len(b) == 0:
		return false
	case b[0] == proxyproto.SIGV1[0]:
		sig, _ := br.Peek(len(proxyproto.SIGV1))
		return bytes.Equal(sig, proxyproto.SIGV1)
	case b[0] == proxyproto.SIGV2[0]:
		sig, _ := br.Peek(len(proxyproto.SIGV2))
		return bytes.Equal(sig, proxyproto.SIGV2)
	}
	return false
}
