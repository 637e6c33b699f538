package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"
)

// Pacing of the hostile background.
const (
	// trickleEvery is how often a trickling slowloris connection sends its next
	// byte: slow enough that a handshake never completes within a timeout.
	trickleEvery = 2 * time.Second
	// reconnectAfter is how long a slowloris connection waits after the proxy
	// closed it before it opens the next one.
	reconnectAfter = time.Second
)

// browse loops short sessions of user u until ctx ends: an exponentially
// distributed pause of mean -browse-every (the first one uniform, so the users
// start spread out), then connect, log in, one 64-byte round trip to an echo
// target, close.
func (cs *campus) browse(ctx context.Context, u int) {
	rng := rand.New(rand.NewPCG(uint64(u), 0x62726f777365))
	mean := cs.o.campus.browse
	pause := time.Duration(rng.Float64() * float64(mean))
	msg, buf := pattern(echoSize), make([]byte, echoSize)
	pop := cs.mix.role[u].browsePop()
	for sleepCtx(ctx, pause) {
		pause = time.Duration(rng.ExpFloat64() * float64(mean))
		t0 := time.Now()
		conn, err := cs.dialer(u).dial(ctx, cs.cred(u), cs.targets.echo[rng.IntN(len(cs.targets.echo))])
		if err != nil {
			if ctx.Err() == nil {
				cs.events.fail(pop, err)
			}
			continue
		}
		login := time.Since(t0)
		conn.SetDeadline(time.Now().Add(cs.o.timeout))
		err = roundTrip(conn, msg, buf)
		conn.Close()
		switch {
		case err == nil:
			cs.events.browsed(login, time.Since(t0), echoSize)
		case ctx.Err() == nil:
			cs.events.fail(pop, &stepError{"io", err})
		}
	}
}

// guess loops wrong logins from guesser i's address until ctx ends, at most one
// per -guess-every; each is counted by its outcome with the time to the answer.
func (cs *campus) guess(ctx context.Context, i int) {
	from := campusAddr(guessNet, i%cs.o.campus.guessAddr)
	rng := rand.New(rand.NewPCG(uint64(i), 0x6775657373))
	for n := 0; ctx.Err() == nil; n++ {
		t0 := time.Now()
		user := cs.mix.users[rng.IntN(len(cs.mix.users))]
		if n%4 == 3 {
			user = fmt.Sprintf("nobody%d", rng.IntN(1000)) // unknown names are tried too
		}
		outcome := cs.guessOnce(ctx, from, credential{user: user, password: fmt.Sprintf("guess-%d-%d", i, n)})
		if ctx.Err() != nil {
			return
		}
		cs.events.guess(outcome, time.Since(t0))
		sleepCtx(ctx, time.Until(t0.Add(cs.o.campus.guessGap)))
	}
}

// guessOnce tries one login and returns its outcome: "rejected", "accepted" (a
// wrong password let in: a bug), or the cause of the failure before the answer
// ("closed", "timeout", "reset", ...), or "dial" when no connection opened.
func (cs *campus) guessOnce(ctx context.Context, from netip.Addr, c credential) string {
	nd := net.Dialer{Timeout: cs.o.timeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))}
	conn, err := nd.DialContext(ctx, "tcp", cs.o.proxy)
	if err != nil {
		return "dial"
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(cs.o.timeout))
	if err := greet(conn, methodPassword); err != nil {
		return errCause(err)
	}
	switch err := authenticate(conn, c); {
	case err == nil:
		return "accepted"
	case errors.Is(err, errRejected):
		return "rejected"
	default:
		return errCause(err)
	}
}

// slowloris holds one connection at a time from connection i's address: it
// opens one, sends nothing (even i) or one byte of a login every trickleEvery
// (odd i), and when the proxy closes it, records how long it was held and opens
// the next. The first opens are spread over the warm-up.
func (cs *campus) slowloris(ctx context.Context, i int) {
	from := campusAddr(slowNet, i%cs.o.campus.slowAddrs)
	nd := net.Dialer{Timeout: cs.o.timeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))}
	spread := max(cs.o.campus.warmup, time.Second)
	for wait := rand.N(spread); sleepCtx(ctx, wait); wait = reconnectAfter {
		conn, err := nd.DialContext(ctx, "tcp", cs.o.proxy)
		if err != nil {
			if ctx.Err() == nil {
				cs.events.fail("slowloris", &stepError{"dial", err})
			}
			continue
		}
		cs.events.slowOpen.Add(1)
		t0 := time.Now()
		hold(ctx, conn, i%2 == 1, cs.cred(0))
		cs.events.slowOpen.Add(-1)
		if ctx.Err() == nil {
			cs.events.slowClosed(time.Since(t0))
		}
	}
}

// hold keeps conn open until the proxy closes it or ctx ends, trickling the
// bytes of a greeting and a wrong login for c's user when trickle is set.
func hold(ctx context.Context, conn net.Conn, trickle bool, c credential) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if !trickle {
		io.Copy(io.Discard, conn)
		return
	}
	login := []byte{socksVersion, 1, methodPassword, authVersion, byte(len(c.user))}
	login = append(append(login, c.user...), 1, 'x')
	buf := make([]byte, 64)
	for {
		conn.SetReadDeadline(time.Now().Add(trickleEvery))
		_, err := conn.Read(buf)
		switch {
		case err == nil: // the proxy's answer to the greeting
		case errors.Is(err, os.ErrDeadlineExceeded):
			if len(login) > 0 {
				if _, err := conn.Write(login[:1]); err != nil {
					return
				}
				login = login[1:]
			}
		default:
			return
		}
	}
}
