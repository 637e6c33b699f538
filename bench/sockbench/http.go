package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// The HTTP proxy mode (-http): sessions open with CONNECT instead of a SOCKS5
// handshake, with Proxy-Authorization: Basic when a user is given, so every
// SOCKS5 scenario measures an HTTP proxy's tunnels too; the get-churn scenario
// measures its forwarding of plain requests.

// webBody is what the web target answers every request with.
var webBody = pattern(echoSize)

// httpConnect asks an HTTP proxy for a tunnel to target and reads its answer
// up to the empty line, byte by byte so that no tunnel byte is taken.
func httpConnect(rw io.ReadWriter, c credential, target netip.AddrPort) error {
	req := "CONNECT " + target.String() + " HTTP/1.1\r\nHost: " + target.String() + "\r\n" + proxyAuth(c) + "\r\n"
	if _, err := io.WriteString(rw, req); err != nil {
		return err
	}
	var head []byte
	var b [1]byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if len(head) > 8<<10 {
			return errors.New("CONNECT answer over 8 KiB")
		}
		if _, err := io.ReadFull(rw, b[:]); err != nil {
			return err
		}
		head = append(head, b[0])
	}
	if len(head) < 12 || string(head[9:12]) != "200" {
		line, _, _ := bytes.Cut(head, []byte("\r\n"))
		return fmt.Errorf("CONNECT answered %q", line)
	}
	return nil
}

// proxyAuth is the Proxy-Authorization field line of c, or "" without a user.
func proxyAuth(c credential) string {
	if c.user == "" {
		return ""
	}
	return "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.password)) + "\r\n"
}

// serveWeb answers one request (a head up to its empty line) with 64 bytes and
// closes, as an origin does for Connection: close.
func serveWeb(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(line) <= 2 {
			break
		}
	}
	head := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
		strconv.Itoa(len(webBody)) + "\r\nConnection: close\r\n\r\n"
	c.Write(append([]byte(head), webBody...))
}

// runGetChurn has -conns clients each loop requests for -duration, one per
// connection as a client without keep-alive does: connect to the proxy, GET
// the web target's absolute URI (with Connection: close), read the 64-byte
// answer, close.
func runGetChurn(ctx context.Context, o *options, log *slog.Logger) (result, error) {
	t, err := startTargets(log)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	d := newDialer(o)
	errs := newErrorCount(log)
	cpu, err := startChurnCPU(o.pid)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	end := start.Add(o.duration)
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	for _, c := range o.perConn {
		wg.Go(func() {
			var ds []time.Duration
			for n := 0; n < maxSessionsPerClient && ctx.Err() == nil && time.Now().Before(end); n++ {
				t0 := time.Now()
				if err := d.get(ctx, c, t.web); err != nil {
					errs.add(err)
					time.Sleep(errorBackoff)
					continue
				}
				ds = append(ds, time.Since(t0))
			}
			mu.Lock()
			all = append(all, ds...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := &churnResult{Scenario: "get-churn", Via: d.via(), Clients: len(o.perConn), Seconds: elapsed.Seconds(),
		Sessions: len(all), PerSecond: float64(len(all)) / elapsed.Seconds(), SessionTime: summarize(all)}
	r.Errors, r.ErrorSteps = errs.counts()
	cpu.finish(r)
	return r, ctx.Err()
}

// get sends one request for the web target on a new connection, through the
// proxy (absolute URI) or directly (origin form), and reads the answer to the
// close. Errors are [*stepError]s.
func (d dialer) get(ctx context.Context, c credential, web netip.AddrPort) error {
	addr, target := d.proxy, "http://"+web.String()+"/"
	if addr == "" {
		addr, target = web.String(), "/"
	}
	nd := net.Dialer{Timeout: d.timeout}
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return &stepError{"dial", err}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(d.timeout))
	req := "GET " + target + " HTTP/1.1\r\nHost: " + web.String() + "\r\nConnection: close\r\n" + proxyAuth(c) + "\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return &stepError{"request", err}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return &stepError{"response", err}
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, webBody) {
		return &stepError{"response", fmt.Errorf("status %d, %d bytes, %v", resp.StatusCode, len(body), err)}
	}
	return nil
}
