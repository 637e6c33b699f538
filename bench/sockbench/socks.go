package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// SOCKS5 protocol constants (RFC 1928, RFC 1929).
const (
	socksVersion   = 0x05
	methodNoAuth   = 0x00
	methodPassword = 0x02
	methodNone     = 0xff
	authVersion    = 0x01
	cmdConnect     = 0x01
	atypIPv4       = 0x01
	atypDomain     = 0x03
	atypIPv6       = 0x04
)

// errRejected is a refused RFC 1929 login.
var errRejected = errors.New("rejected")

// replyError is a SOCKS5 reply other than success; its value is the reply code.
type replyError byte

func (e replyError) Error() string { return fmt.Sprintf("refused with reply %#02x", byte(e)) }

// stepError is a failed session step; step names it for error counts ("dial",
// "greeting", "auth", "connect", "io").
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// errStep returns the step of err, or "other" when it is not a [stepError].
func errStep(err error) string {
	if se, ok := errors.AsType[*stepError](err); ok {
		return se.step
	}
	return "other"
}

// dialer opens TCP connections to targets, through a SOCKS5 proxy, an HTTP
// proxy's CONNECT, or directly.
// The zero value is not usable; a dialer is safe for concurrent use.
type dialer struct {
	proxy   string        // proxy host:port; "" dials the target directly
	http    bool          // the proxy speaks HTTP: tunnels open with CONNECT
	timeout time.Duration // bounds the TCP connect plus the whole handshake
	from    netip.Addr    // source address to bind; the zero Addr lets the kernel choose
	tls     *tlsClient    // TLS to the proxy first (tlsmode.go); nil: none
}

// newDialer returns the dialer the options ask for.
func newDialer(o *options) dialer {
	d := dialer{proxy: o.proxy, http: o.http, timeout: o.timeout, tls: o.tls.tlsClientOf(o)}
	if o.direct {
		d.proxy, d.tls = "", nil
	}
	return d
}

// via names the path for reports: the proxy address or "direct".
func (d dialer) via() string {
	switch {
	case d.proxy == "":
		return "direct"
	case d.tls != nil && d.tls.h2 != nil:
		return "h2://" + d.proxy
	case d.tls != nil:
		return "tls://" + d.proxy
	}
	return d.proxy
}

// dial connects to target (an IP:port) as c. Errors are [*stepError]s.
func (d dialer) dial(ctx context.Context, c credential, target netip.AddrPort) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout}
	if d.from.IsValid() {
		nd.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(d.from, 0))
	}
	if d.proxy == "" {
		conn, err := nd.DialContext(ctx, "tcp", target.String())
		if err != nil {
			return nil, &stepError{"dial", err}
		}
		return conn, nil
	}
	if d.tls != nil && d.tls.h2 != nil {
		return d.tls.h2.dial(ctx, c, target)
	}
	conn, err := nd.DialContext(ctx, "tcp", d.proxy)
	if err != nil {
		return nil, &stepError{"dial", err}
	}
	conn.SetDeadline(time.Now().Add(d.timeout))
	if d.tls != nil {
		tc, err := d.tls.handshake(ctx, conn)
		if err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	if d.http {
		err = httpConnect(conn, c, target)
		if err != nil {
			err = &stepError{"connect", err}
		}
	} else {
		err = handshake(conn, c, target)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// handshake negotiates the method, authenticates and sends CONNECT, one step at a
// time as ordinary clients do.
func handshake(rw io.ReadWriter, c credential, target netip.AddrPort) error {
	method := byte(methodNoAuth)
	if c.user != "" {
		method = methodPassword
	}
	if err := greet(rw, method); err != nil {
		return &stepError{"greeting", err}
	}
	if method == methodPassword {
		if err := authenticate(rw, c); err != nil {
			return &stepError{"auth", err}
		}
	}
	if err := connect(rw, target); err != nil {
		return &stepError{"connect", err}
	}
	return nil
}

func greet(rw io.ReadWriter, method byte) error {
	if _, err := rw.Write([]byte{socksVersion, 1, method}); err != nil {
		return err
	}
	var reply [2]byte
	if _, err := io.ReadFull(rw, reply[:]); err != nil {
		return err
	}
	if reply[0] != socksVersion {
		return fmt.Errorf("server speaks version %d", reply[0])
	}
	if reply[1] != method {
		return fmt.Errorf("server chose method %#02x, offered %#02x", reply[1], method)
	}
	return nil
}

func authenticate(rw io.ReadWriter, c credential) error {
	msg := make([]byte, 0, 3+len(c.user)+len(c.password))
	msg = append(msg, authVersion, byte(len(c.user)))
	msg = append(msg, c.user...)
	msg = append(msg, byte(len(c.password)))
	msg = append(msg, c.password...)
	if _, err := rw.Write(msg); err != nil {
		return err
	}
	var reply [2]byte
	if _, err := io.ReadFull(rw, reply[:]); err != nil {
		return err
	}
	if reply[1] != 0 {
		return fmt.Errorf("%w (status %d)", errRejected, reply[1])
	}
	return nil
}

func connect(rw io.ReadWriter, target netip.AddrPort) error {
	if _, err := rw.Write(connectRequest(target)); err != nil {
		return err
	}
	var head [4]byte
	if _, err := io.ReadFull(rw, head[:]); err != nil {
		return err
	}
	if head[0] != socksVersion {
		return fmt.Errorf("reply version %d", head[0])
	}
	err := skipAddress(rw, head[3])
	if head[1] != 0 {
		return replyError(head[1])
	}
	return err
}

// connectRequest encodes CONNECT to target.
func connectRequest(target netip.AddrPort) []byte {
	addr := target.Addr().Unmap()
	msg := []byte{socksVersion, cmdConnect, 0, atypIPv4}
	if addr.Is6() {
		msg[3] = atypIPv6
	}
	msg = append(msg, addr.AsSlice()...)
	return binary.BigEndian.AppendUint16(msg, target.Port())
}

// skipAddress reads the bound address and port that end a reply.
func skipAddress(r io.Reader, atyp byte) error {
	var n int
	switch atyp {
	case atypIPv4:
		n = 4 + 2
	case atypIPv6:
		n = 16 + 2
	case atypDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return err
		}
		n = int(l[0]) + 2
	default:
		return fmt.Errorf("reply address type %#02x", atyp)
	}
	_, err := io.ReadFull(r, make([]byte, n))
	return err
}
