package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// maxKeepAnswer bounds an answer to a keep-alive request, head and body: a
// PAC file or a 407 page is a few hundred bytes.
const maxKeepAnswer = 64 << 10

// errKeepAnswer reports an answer larger than maxKeepAnswer.
var errKeepAnswer = errors.New("answer larger than 64 KiB")

// keepFigures are the unauthenticated keep-alive connections of a window:
// how many were open at its end, the answers they got by status, and the
// connections the proxy closed, with how long each was held.
type keepFigures struct {
	Open      int64          `json:"open"`
	Answers   map[string]int `json:"answers,omitempty"`
	PerSecond float64        `json:"answers_per_second"`
	Closed    int            `json:"closed_by_proxy"`
	HeldP50   float64        `json:"held_p50_seconds"`
}

// keepEvery returns the interval of a keep-alive connection's requests:
// -keepalive-every, or half the proxy's keep-alive wait (so that the proxy
// never closes a connection for waiting too long) but at most a window (so
// that every window sees each connection ask).
func (cs *campus) keepEvery() time.Duration {
	if e := cs.o.campus.keepEvery; e > 0 {
		return e
	}
	ka := cs.limits.keepAlive
	if ka <= 0 {
		ka = time.Minute // http.keepalive's default
	}
	return min(ka/2, cs.o.campus.window)
}

// keepRequest returns the request keep-alive connection i sends again and
// again: GET /proxy.pac in origin form, to the proxy itself (even i), or a
// proxied GET without credentials, which a proxy with logins answers 407
// (odd i). Neither needs a login, so they hold no session.
func (cs *campus) keepRequest(i int) []byte {
	if i%2 == 0 {
		return fmt.Appendf(nil, "GET /proxy.pac HTTP/1.1\r\nHost: %s\r\n\r\n", cs.o.proxy)
	}
	target := cs.targets.echo[i%len(cs.targets.echo)]
	return fmt.Appendf(nil, "GET http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
}

// keepAlive holds one keep-alive connection at a time from connection i's
// address until ctx ends: it sends keepRequest(i), reads the answer and sends
// it again every keepEvery on the same connection, forever. When the proxy
// closes the connection, it records how long it was held and opens the next
// after reconnectAfter. The first opens are spread over the warm-up.
func (cs *campus) keepAlive(ctx context.Context, i int) {
	c := &cs.o.campus
	from := campusAddr(keepNet, i%c.keepAddrs)
	nd := net.Dialer{Timeout: cs.o.timeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))}
	req := cs.keepRequest(i)
	for wait := rand.N(max(c.warmup, time.Second)); sleepCtx(ctx, wait); wait = reconnectAfter {
		conn, err := nd.DialContext(ctx, "tcp", cs.o.proxy)
		if err != nil {
			if ctx.Err() == nil {
				cs.events.fail("keep-alive", &stepError{"dial", err})
			}
			continue
		}
		cs.events.keepOpen.Add(1)
		t0 := time.Now()
		err = cs.keepAsking(ctx, conn, req)
		cs.events.keepOpen.Add(-1)
		if ctx.Err() != nil {
			return
		}
		cs.events.keepClosed(time.Since(t0))
		if !errors.Is(err, io.EOF) && !errors.Is(err, errProxyClose) {
			cs.events.fail("keep-alive", err)
		}
	}
}

// errProxyClose reports an answer that closes the connection.
var errProxyClose = errors.New("the proxy closed the connection after its answer")

// keepAsking sends req on conn and reads the answer, every keepEvery, until
// ctx ends or the connection fails (the proxy closing it between requests
// shows as io.EOF). It closes conn.
func (cs *campus) keepAsking(ctx context.Context, conn net.Conn, req []byte) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	kr := newKeepReader(conn)
	for {
		conn.SetDeadline(time.Now().Add(cs.o.timeout))
		if _, err := conn.Write(req); err != nil {
			return closedOr("io", err)
		}
		status, closing, err := kr.answer()
		if err != nil {
			return closedOr("answer", err)
		}
		cs.events.keepAnswer(status)
		if closing {
			return errProxyClose
		}
		if !sleepCtx(ctx, cs.keepEvery()) {
			return nil
		}
	}
}

// closedOr returns io.EOF when err shows the proxy closed the connection (an
// end of stream, or a reset of a connection it closed with bytes unread),
// else err as a failure of step.
func closedOr(step string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return io.EOF
	}
	return &stepError{step, err}
}

// keepReader reads the answers of one keep-alive connection, each at most
// maxKeepAnswer bytes.
type keepReader struct {
	lr io.LimitedReader
	br *bufio.Reader
}

func newKeepReader(r io.Reader) *keepReader {
	kr := &keepReader{lr: io.LimitedReader{R: r}}
	kr.br = bufio.NewReader(&kr.lr)
	return kr
}

// answer reads one HTTP response (net/http parses it) and its body, and
// returns its status and whether it closes the connection. io.EOF means the
// proxy closed the connection before the answer began. It reads at most
// maxKeepAnswer bytes, head and body, from the connection.
func (kr *keepReader) answer() (status int, closing bool, err error) {
	kr.lr.N = maxKeepAnswer
	if _, err := kr.br.Peek(1); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(kr.br, nil)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	switch {
	case kr.lr.N == 0 && kr.br.Buffered() == 0:
		return 0, false, errKeepAnswer
	case err != nil:
		return 0, false, err
	case resp.StatusCode < 100:
		return 0, false, fmt.Errorf("status %03d", resp.StatusCode) // net/http takes any three digits
	}
	return resp.StatusCode, resp.Close, nil
}

// keepAnswer counts an answer to a keep-alive request by its status.
func (e *campusEvents) keepAnswer(status int) {
	e.mu.Lock()
	e.w.keepAnswers[strconv.Itoa(status)]++
	e.mu.Unlock()
}

// keepClosed records a keep-alive connection the proxy closed after d.
func (e *campusEvents) keepClosed(d time.Duration) {
	e.mu.Lock()
	e.w.keepClosed = append(e.w.keepClosed, d)
	e.mu.Unlock()
}

// keepFiguresOf returns a window's keep-alive figures from its events; open
// is the connections open at its end.
func keepFiguresOf(ev windowEvents, secs float64, open int64) keepFigures {
	answers := 0
	for _, n := range ev.keepAnswers {
		answers += n
	}
	held := make([]float64, len(ev.keepClosed))
	for i, d := range ev.keepClosed {
		held[i] = d.Seconds()
	}
	slices.Sort(held)
	return keepFigures{Open: open, Answers: cloneCounts(ev.keepAnswers), PerSecond: float64(answers) / secs,
		Closed: len(held), HeldP50: percentile(held, 50)}
}
