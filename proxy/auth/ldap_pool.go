package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// maxIdle is how long a connection may sit unused in the pool. Directories and
// the firewalls in front of them drop idle connections (Active Directory after 15
// minutes, OpenLDAP after its idletimeout), sometimes silently, and a login should
// not spend its timeout finding out.
const maxIdle = time.Minute

// connPool holds connections bound as the service account, at most size of them
// open at once. Each is used by one request at a time; a login that finds none
// free waits for one, within its deadline. A connection that broke, timed out or
// was bound as a user is closed rather than put back.
type connPool struct {
	addr     string
	ldaps    bool
	startTLS bool
	tls      *tls.Config
	bindDN   string
	bindPW   string
	rec      DirectoryRecorder

	// slots holds a token for each connection in use or being opened.
	slots chan struct{}

	mu     sync.Mutex
	idle   []idleConn // the most recently used last
	closed bool
}

type idleConn struct {
	c     *ldap.Conn
	since time.Time
}

func newConnPool(u *url.URL, startTLS bool, tc *tls.Config, bindDN, bindPW string, size int, rec DirectoryRecorder) *connPool {
	addr := u.Host
	if u.Port() == "" {
		port := "389"
		if u.Scheme == "ldaps" {
			port = "636"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	return &connPool{addr: addr, ldaps: u.Scheme == "ldaps", startTLS: startTLS, tls: tc,
		bindDN: bindDN, bindPW: bindPW, rec: rec, slots: make(chan struct{}, size)}
}

// do runs f on a connection under ctx: ctx's end closes the connection, which
// ends the request. A pooled connection that fails without an answer from the
// directory may just have gone stale: f is tried once more on a new one.
func (p *connPool) do(ctx context.Context, op string, f func(c *ldap.Conn) error) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		p.rec.DirectoryError(KindTimeout)
		return &DirectoryError{Kind: KindTimeout, Op: op, Err: errors.New("no directory connection free in time")}
	}
	defer func() { <-p.slots }()
	c, reused := p.take()
	for {
		if c == nil {
			var err error
			if c, err = p.dial(ctx); err != nil {
				return err
			}
		}
		err := p.run(ctx, c, op, f)
		if answered(err) {
			p.put(c, true)
			return err
		}
		p.discard(c)
		if !reused || ctx.Err() != nil {
			return p.failed(ctx, op, err, false)
		}
		c, reused = nil, false
	}
}

// run times one request on c, with ctx's end closing c.
func (p *connPool) run(ctx context.Context, c *ldap.Conn, op string, f func(c *ldap.Conn) error) error {
	if dl, ok := ctx.Deadline(); ok {
		c.SetTimeout(time.Until(dl))
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	start := time.Now()
	err := f(c)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if answered(err) {
		p.rec.DirectoryRequest(op, time.Since(start))
	}
	return err
}

// failed records a failed step and returns it as a *DirectoryError.
func (p *connPool) failed(ctx context.Context, op string, err error, tlsStep bool) error {
	kind := classify(ctx, err, tlsStep)
	p.rec.DirectoryError(kind)
	if kind == KindTimeout && ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return &DirectoryError{Kind: kind, Op: op, Err: err}
}

// take returns the most recently used idle connection that is still open and
// fresh, closing the others it passes, or nil.
func (p *connPool) take() (*ldap.Conn, bool) {
	p.mu.Lock()
	var stale []*ldap.Conn
	var c *ldap.Conn
	for len(p.idle) > 0 && c == nil {
		ic := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if ic.c.IsClosing() || time.Since(ic.since) > maxIdle {
			stale = append(stale, ic.c)
			continue
		}
		c = ic.c
	}
	p.mu.Unlock()
	for _, s := range stale {
		p.discard(s)
	}
	return c, c != nil
}

// put returns c to the pool, or closes it when it is not fit for reuse or the
// pool is closed.
func (p *connPool) put(c *ldap.Conn, ok bool) {
	p.mu.Lock()
	if ok && !p.closed && !c.IsClosing() {
		p.idle = append(p.idle, idleConn{c: c, since: time.Now()})
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.discard(c)
}

func (p *connPool) discard(c *ldap.Conn) {
	c.Close()
	p.rec.DirectoryConnClosed()
}

// dial opens a connection: TCP, TLS from the start (ldaps) or StartTLS, then the
// service account's bind, all within ctx.
func (p *connPool) dial(ctx context.Context) (*ldap.Conn, error) {
	start := time.Now()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, p.failed(ctx, "connect to "+p.addr, err, false)
	}
	// Until the connection is ready, ctx's end closes the socket under whatever
	// step is waiting.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	c, err := p.handshake(ctx, raw)
	if !stop() && err == nil {
		c.Close()
		err = p.failed(ctx, "connect to "+p.addr, ctx.Err(), false)
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	p.rec.DirectoryConnOpened()
	p.rec.DirectoryRequest(OpConnect, time.Since(start))
	return c, nil
}

func (p *connPool) handshake(ctx context.Context, raw net.Conn) (*ldap.Conn, error) {
	var c *ldap.Conn
	if p.ldaps {
		tc := tls.Client(raw, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, p.failed(ctx, "TLS handshake with "+p.addr, err, !isNetworkError(err))
		}
		c = ldap.NewConn(tc, true)
	} else {
		c = ldap.NewConn(raw, false)
	}
	c.Start()
	if dl, ok := ctx.Deadline(); ok {
		c.SetTimeout(time.Until(dl))
	}
	if p.startTLS {
		// go-ldap reports a failed handshake as text only; any failure here
		// that is not the network's is a TLS one (no StartTLS offered included).
		if err := c.StartTLS(p.tls); err != nil {
			c.Close()
			return nil, p.failed(ctx, "StartTLS with "+p.addr, err, ctx.Err() == nil)
		}
	}
	if err := c.Bind(p.bindDN, p.bindPW); err != nil {
		c.Close()
		return nil, p.failed(ctx, "bind as the service account "+p.bindDN, err, false)
	}
	return c, nil
}

// isNetworkError reports whether a TLS handshake failed because the connection
// did (reset, closed, timed out) rather than the TLS exchange.
func isNetworkError(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed)
}

// close closes the idle connections, and makes the ones in use close when they
// are put back. Requests may still be made; their connections are not kept.
func (p *connPool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, ic := range idle {
		p.discard(ic.c)
	}
}
