package tunnel

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/sockshaper/sockshaper/metrics"
)

// Refusal says why the core did not do what a front asked, in terms a front maps
// to its protocol's reply: a SOCKS5 reply code, an HTTP status.
type Refusal int

const (
	Allowed         Refusal = iota // nothing refused
	Denied                         // by policy: a destination, a command (SOCKS5 0x02, HTTP 403)
	LimitReached                   // a session cap of the user or the client address (0x02, HTTP 429)
	ProxyFull                      // the proxy's own session cap (0x01, HTTP 503)
	Unresolvable                   // the name did not resolve (0x04, HTTP 502)
	HostUnreachable                // no route, or no answer in time (0x04, HTTP 504)
	NetUnreachable                 // no route to the network (0x03, HTTP 502)
	ConnRefused                    // the destination refused (0x05, HTTP 502)
	Failed                         // anything else (0x01, HTTP 502)
	Gone                           // the connection was evicted or cut: no reply
)

// Outcome is what a step of the core did: Allowed, or a Refusal with the result
// label value the session ends with and the error behind it.
type Outcome struct {
	Refusal Refusal
	Result  string // a metrics result label value; empty when Allowed
	Err     error
}

// OK reports whether nothing was refused.
func (o Outcome) OK() bool { return o.Refusal == Allowed }

// Close reasons of the accounting line. The proxy cuts a connection (with a
// reset, see Conn.Cut) for shutdown, revoked, stalled and error.
const (
	ReasonEOF      = "eof"                 // both ends closed
	ReasonIdle     = "idle"                // no byte moved for timeouts.idle
	ReasonError    = metrics.ResetError    // a socket error on either side
	ReasonShutdown = metrics.ResetShutdown // still running when the drain ended
	ReasonRevoked  = metrics.ResetRevoked  // the user was removed at a reload
	ReasonStalled  = metrics.ResetStalled  // a peer took no byte for timeouts.idle
	ReasonEvicted  = "handshake_evicted"   // its unfinished handshake made room for a newer connection
	ReasonTimeout  = "handshake_timeout"   // the handshake deadline passed
)

// dialRefusal maps a dial error to the refusal a client can act on.
func dialRefusal(err error) Refusal {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno) && errno == syscall.ECONNREFUSED:
		return ConnRefused
	case errors.As(err, &errno) && errno == syscall.ENETUNREACH:
		return NetUnreachable
	case errors.As(err, &errno) && errno == syscall.EHOSTUNREACH,
		errors.Is(err, os.ErrDeadlineExceeded), IsTimeout(err):
		return HostUnreachable
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return Unresolvable
	}
	return Failed
}

// IsTimeout reports whether err is a network timeout, such as a passed deadline.
func IsTimeout(err error) bool {
	if err == nil || err == io.EOF {
		// Every session's end: errors.As below would allocate its target.
		return false
	}
	if ne, ok := err.(net.Error); ok {
		// The relay's common case, a read deadline's *net.OpError, without
		// errors.As's reflection: an idle relay goroutine checks this at every
		// wake, and its stack must stay small (see halfPipe.aside).
		return ne.Timeout()
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
