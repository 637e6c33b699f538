package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	socks5 "github.com/armon/go-socks5"

	"github.com/sockshaper/sockshaper/shaping"
)

// session is one client connection from accept to close. Its fields other than the
// atomics and those under mu belong to the goroutine serving it: the handshake
// goroutine, then, once detached, the relay goroutine that finishes last.
type session struct {
	srv    *Server
	pol    *policy
	conn   net.Conn
	client netip.AddrPort
	id     uint64
	start  time.Time
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger

	user, command, app, result string
	requested, dialled         string
	reason                     string
	opened, userAdmitted       bool
	clientAdmitted             bool           // holds a session slot of its client
	hs                         *handshakeSlot // set by admit, before serve
	detached                   bool           // relay goroutines took over the end

	up, down                   atomic.Int64           // bytes
	throttledUp, throttledDown atomic.Int64           // nanoseconds
	lastActivity               atomic.Int64           // unix nanoseconds
	tokenWaits                 atomic.Int32           // directions waiting for tokens now
	cutBy                      atomic.Pointer[string] // why the proxy cut the session, if it did
	evicted                    atomic.Bool            // its handshake slot went to a newer connection

	mu      sync.Mutex
	aborted bool
	closers []io.Closer // target connection, UDP relay socket
}

// readerPool holds handshake readers: a session waiting for data holds none.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1024) }}

func (sess *session) serve() {
	sess.command, sess.app, sess.result = commandNone, shaping.Other, resultProtocolError
	sess.log = sess.srv.log.With("session", sess.id, "client", sess.client.String())
	defer func() {
		if !sess.detached {
			sess.end()
		}
	}()
	defer sess.srv.recoverSession(sess)

	sess.conn.SetDeadline(sess.start.Add(sess.pol.cfg.Timeouts.Handshake))
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(&handshakeReader{sess: sess})
	req, err := sess.handshake(br)
	pending := takeBuffered(br)
	br.Reset(nil)
	readerPool.Put(br)
	if err != nil {
		sess.logHandshakeError(err)
		return
	}
	if !sess.establish() {
		return
	}
	sess.dispatch(req, pending)
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

func (sess *session) dispatch(req *socks5.Request, pending []byte) {
	switch req.Command {
	case socks5.ConnectCommand:
		sess.connect(req, pending)
	case socks5.BindCommand:
		sess.bind(req)
	case socks5.AssociateCommand:
		sess.associate(req, pending)
	}
}

// refuse replies code and ends the session with result.
func (sess *session) refuse(code byte, result string) {
	writeReply(sess.conn, code, netip.AddrPort{})
	sess.result = result
}

// admitUser applies max_sessions_per_user and makes the session one of its
// user's, which a reload that removes the user cuts; the caller refuses on
// false. A user removed by a reload during the login is refused here.
func (sess *session) admitUser() bool {
	if cur := sess.srv.policy.Load(); cur != sess.pol && cur.roster != nil && !cur.roster.Has(sess.user) {
		return false
	}
	if !sess.srv.limits.admitUser(sess.user, sess.pol.cfg.Limits.MaxSessionsPerUser) {
		return false
	}
	sess.mu.Lock()
	sess.userAdmitted = true
	sess.mu.Unlock()
	return true
}

// owner returns the session's user once admitUser has made it theirs.
func (sess *session) owner() (string, bool) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.user, sess.userAdmitted
}

// open marks the session as relaying, for the active-session gauge.
func (sess *session) open() {
	sess.opened = true
	sess.result = resultOK
	sess.srv.rec.SessionOpened(sess.command, sess.app)
}

// addCloser registers c to be closed by abort; it reports false, having closed c,
// when the session is already aborted.
func (sess *session) addCloser(c io.Closer) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.aborted {
		c.Close()
		return false
	}
	sess.closers = append(sess.closers, c)
	return true
}

// abort ends the session from outside its goroutine: shutdown, or a relay error.
// Closing the sockets wakes every blocked read and write; cancelling the context
// wakes a bucket wait.
func (sess *session) abort() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.aborted = true
	sess.cancel()
	sess.conn.Close()
	for _, c := range sess.closers {
		c.Close()
	}
}

// Close reasons of the accounting line. The proxy cuts a session (with a reset,
// see cut) for shutdown, revoked, stalled and error.
const (
	reasonEOF      = "eof"      // both ends closed
	reasonIdle     = "idle"     // no byte moved for timeouts.idle
	reasonError    = "error"    // a socket error on either side
	reasonShutdown = "shutdown" // still running when the drain ended
	reasonRevoked  = "revoked"  // the user was removed at a reload
	reasonStalled  = "stalled"  // a peer took no byte for timeouts.idle
)

// cut ends the session from outside its flow for reason: both sockets are reset
// rather than closed, so that a client (or destination) sees an error and never
// takes a transfer cut short for a complete one. The first reason sticks.
func (sess *session) cut(reason string) {
	sess.cutBy.CompareAndSwap(nil, &reason)
	sess.mu.Lock()
	resetOnClose(sess.conn)
	for _, c := range sess.closers {
		resetOnClose(c)
	}
	sess.mu.Unlock()
	sess.srv.rec.SessionReset(reason)
	sess.abort()
}

// resetOnClose makes the coming close of a TCP socket send a reset (SO_LINGER 0).
func resetOnClose(c any) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}

func (sess *session) touch() { sess.lastActivity.Store(time.Now().UnixNano()) }

// idleFor reports whether no byte moved in either direction for d. A direction
// waiting for tokens is not idle, however long the wait.
func (sess *session) idleFor(d time.Duration) bool {
	if sess.tokenWaits.Load() > 0 {
		sess.touch()
		return false
	}
	return time.Since(time.Unix(0, sess.lastActivity.Load())) >= d
}

// end releases everything the session holds; it runs once, on whichever goroutine
// finishes the session.
func (sess *session) end() {
	sess.finish()
	sess.srv.removeSession(sess)
}

// finish closes everything, gives back the session's limits and then writes its
// metrics and accounting line: once a session shows as ended, its slots are free
// for the next connection.
func (sess *session) finish() {
	sess.abort()
	sess.srv.handshakes.release(sess.hs) // no-op unless the handshake never ended
	if sess.userAdmitted {
		sess.srv.limits.releaseUser(sess.user)
	}
	if sess.clientAdmitted {
		sess.srv.limits.releaseClient(clientKey(sess.client.Addr()))
	}
	d := time.Since(sess.start)
	if sess.opened {
		sess.srv.rec.SessionClosed(sess.command, sess.app, sess.result, d)
	} else {
		sess.srv.rec.SessionRejected(sess.command, sess.app, sess.result)
	}
	if sess.reason == "" {
		sess.reason = sess.result
	}
	sess.srv.acct.LogAttrs(context.Background(), slog.LevelInfo, "session",
		slog.Uint64("session", sess.id),
		slog.String("client", sess.client.String()),
		slog.String("user", displayUser(sess.user)),
		slog.String("command", sess.command),
		slog.String("destination", sess.requested),
		slog.String("dialled", sess.dialled),
		slog.String("app", sess.app),
		slog.String("result", sess.result),
		slog.Int64("bytes_up", sess.up.Load()),
		slog.Int64("bytes_down", sess.down.Load()),
		slog.Duration("duration", d),
		slog.Duration("throttled_up", time.Duration(sess.throttledUp.Load())),
		slog.Duration("throttled_down", time.Duration(sess.throttledDown.Load())),
		slog.String("close_reason", sess.reason),
	)
}

// displayUser names the anonymous user of no-auth mode in logs.
func displayUser(u string) string {
	if u == "" {
		return "-"
	}
	return u
}

// logHandshakeError logs what went wrong before a request was served. A client that
// connects and leaves is normal (health checks, port scans) and logs at debug.
func (sess *session) logHandshakeError(err error) {
	level := slog.LevelInfo
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		level = slog.LevelDebug
	}
	if isTimeout(err) {
		sess.reason = "handshake_timeout"
	}
	if sess.evicted.Load() {
		sess.result, sess.reason, level = resultLimitReached, reasonEvicted, slog.LevelDebug
	}
	sess.log.Log(context.Background(), level, "handshake failed", "result", sess.result, "err", err)
}

// hostPort formats a request's destination as the client gave it.
func hostPort(spec *socks5.AddrSpec) string {
	host := spec.FQDN
	if host == "" {
		host = spec.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(spec.Port))
}
