// Package socks5 is sockshaper's SOCKS5 front (RFC 1928, with RFC 1929
// username/password): it speaks the wire protocol, with armon/go-socks5 as the
// parser of requests and logins, and turns the core's outcomes into reply codes.
// CONNECT goes through the core's dial and relay; BIND is refused unless an
// operator insists (it is the inbound path of a Skype supernode); UDP ASSOCIATE
// relays datagrams through the core's policy, classifier and buckets, answering
// only from peers the client sent to.
package socks5

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	socks5 "github.com/armon/go-socks5"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// Version is the first byte of every SOCKS5 message: the server tells its
// clients from HTTP ones by it.
const Version = socksVersion

// Front serves SOCKS5 connections. It holds nothing of its own; it is safe for
// concurrent use.
type Front struct{}

// Serve serves one connection whose handshake deadline is set, reading it
// through br (whose first byte the server has peeked): greeting, login and
// request, then the command. br is the front's until it returns; the front has
// taken what it needs from it by then. The connection is left to the caller to
// end, unless a relay took it over (conn.Detached).
func (Front) Serve(conn *tunnel.Conn, br *bufio.Reader) {
	front := metrics.FrontSOCKS5
	if conn.Secure() {
		front = metrics.FrontSOCKS5TLS
	}
	s := conn.NewSession(front)
	req, err := handshake(s, br)
	pending := takeBuffered(br)
	if err != nil {
		logHandshakeError(s, err)
		return
	}
	switch req.Command {
	case metrics.CommandConnect:
		connect(s, req, pending)
	case metrics.CommandBind:
		bind(s, req)
	case metrics.CommandUDPAssociate:
		associate(s, req, pending)
	}
}

// takeBuffered copies out bytes a client sent after its request (clients may send
// data before the reply arrives), so the pooled reader can go back.
func takeBuffered(br *bufio.Reader) []byte {
	if br.Buffered() == 0 {
		return nil
	}
	b, _ := br.Peek(br.Buffered())
	return append([]byte(nil), b...)
}

// logHandshakeError logs what went wrong before a request was served. A client that
// connects and leaves is normal (health checks, port scans) and logs at debug,
// and so does a failed login, which the core has logged already.
func logHandshakeError(s *tunnel.Session, err error) {
	level := slog.LevelInfo
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, errLoginRefused) || s.Conn().Evicted() {
		level = slog.LevelDebug
	}
	if tunnel.IsTimeout(err) {
		s.Closing(tunnel.ReasonTimeout)
	}
	s.Log().Log(context.Background(), level, "handshake failed", "err", err)
}

// hostPort formats a request's destination as the client gave it.
func hostPort(spec *socks5.AddrSpec) string {
	host := spec.FQDN
	if host == "" {
		host = spec.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(spec.Port))
}

// request turns a parsed request into the core's.
func request(command string, spec *socks5.AddrSpec) tunnel.Request {
	return tunnel.Request{Command: command, Target: target(spec), Requested: hostPort(spec)}
}

// target turns a request's address into the core's.
func target(spec *socks5.AddrSpec) tunnel.Target {
	t := tunnel.Target{Host: spec.FQDN, Port: uint16(spec.Port)}
	if t.Host == "" {
		t.Addr, _ = netip.AddrFromSlice(spec.IP)
		t.Addr = t.Addr.Unmap()
	}
	return t
}
