package httpproxy

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// maxResponseHead bounds an origin's response head: net/http's parser has no
// bound of its own, and an origin is not to be trusted more than a client.
const maxResponseHead = 64 << 10

// upReaderPool holds the readers of origin connections.
var upReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8<<10) }}

// upstream is the origin connection of a client connection's last forwarded
// request, kept for its next request to the same origin.
type upstream struct {
	key  string // the destination, host:port
	conn *net.TCPConn
	tee  headTee          // under lr: keeps the response heads' bytes
	lr   io.LimitedReader // under br: bounds a response head while one is read
	br   *bufio.Reader
}

// newUpstream wraps a connection just dialled to key.
func newUpstream(key string, conn *net.TCPConn) *upstream {
	u := &upstream{key: key, conn: conn}
	u.tee.r = conn
	u.lr = io.LimitedReader{R: &u.tee, N: math.MaxInt64}
	u.br = upReaderPool.Get().(*bufio.Reader)
	u.br.Reset(&u.lr)
	return u
}

// headTee keeps what the reader takes from an origin while response heads are
// read: net/http drops a Connection field that says close, and with it the
// names of the fields it lists, which must not be forwarded either.
type headTee struct {
	r   io.Reader
	on  bool
	buf []byte
}

func (t *headTee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if t.on && len(t.buf)+n <= 2*maxResponseHead {
		t.buf = append(t.buf, p[:n]...)
	}
	return n, err
}

func (t *headTee) start() { t.on, t.buf = true, t.buf[:0] }

// connectionFields stops keeping bytes and returns the names, lower case, that
// the Connection fields of the head after the first skip heads list.
func (t *headTee) connectionFields(skip int) []string {
	t.on = false
	var out []string
	b := t.buf
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		b = rest
		line = bytes.TrimSuffix(line, []byte{'\r'})
		switch name, value, _ := bytes.Cut(line, []byte{':'}); {
		case len(line) == 0 && skip == 0:
			return out
		case len(line) == 0:
			skip--
		case skip == 0 && strings.EqualFold(string(name), "Connection"):
			out = append(out, splitList(strings.ToLower(string(value)))...)
		}
	}
	return out
}

// close closes the connection and forgets it in conn. A nil upstream does
// nothing.
func (u *upstream) close(conn *tunnel.Conn) {
	if u == nil {
		return
	}
	conn.RemoveCloser(u.conn)
	u.conn.Close()
	u.br.Reset(nil)
	upReaderPool.Put(u.br)
	u.br = nil
}

// limitHead bounds what the reader may take from the origin until unlimit: the
// head of the next response, and what the reader buffers beyond it.
func (u *upstream) limitHead() { u.lr.N = maxResponseHead }
func (u *upstream) unlimit()   { u.lr.N = math.MaxInt64 }

// reusable reports whether the connection can carry another request: the origin
// has sent nothing since its last response and has not closed it.
func (u *upstream) reusable() bool {
	return u.br.Buffered() == 0 && quiet(u.conn)
}

// upstreamFor returns the connection for a request to d: the last one when it
// goes to the same origin and is still open (the core checks the policy and
// classifies the request again on it), else a new one from the core's dial. A
// refusal has the session's result set; reused says whether the connection was
// the last request's.
func (c *client) upstreamFor(s *tunnel.Session, d destination) (u *upstream, reused bool, o tunnel.Outcome) {
	key := d.hostPort()
	if u := c.up; u != nil {
		if u.key == key && u.reusable() {
			return u, true, s.Reuse(d.target, u.conn)
		}
		u.close(c.conn)
		c.up = nil
	}
	conn, o := s.Dial(d.target)
	if !o.OK() {
		return nil, false, o
	}
	c.up = newUpstream(key, conn)
	return c.up, false, o
}

// timed refreshes a connection's read or write deadline, at most once a second,
// before each read from r or write to the connection, so that a transfer that
// moves ends only when nothing moved for idle.
type timed struct {
	conn     net.Conn
	r        io.Reader
	idle     time.Duration
	rAt, wAt time.Time
}

func (t *timed) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(t.rAt) >= time.Second {
		t.rAt = now
		t.conn.SetReadDeadline(now.Add(t.idle))
	}
	return t.r.Read(p)
}

func (t *timed) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(t.wAt) >= time.Second {
		t.wAt = now
		t.conn.SetWriteDeadline(now.Add(t.idle))
	}
	return t.conn.Write(p)
}
