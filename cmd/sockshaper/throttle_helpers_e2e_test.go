package main

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// loginResult is one RFC 1929 login's status (0 ok, 1 refused; 255 when no
// answer came) and how long the answer took from the login's send.
type loginResult struct {
	status byte
	took   time.Duration
}

// socksLoginFrom is socksLogin from the loopback address source, without
// t.Fatal, so that many can run at once on goroutines.
func socksLoginFrom(proxyAddr, source, user, pass string) (loginResult, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", proxyAddr)
	if err != nil {
		return loginResult{status: 255}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write([]byte{5, 1, 2}); err != nil {
		return loginResult{status: 255}, err
	}
	method := make([]byte, 2)
	if _, err := io.ReadFull(c, method); err != nil {
		return loginResult{status: 255}, fmt.Errorf("greeting: %w", err)
	}
	msg := append([]byte{1, byte(len(user))}, user...)
	msg = append(append(msg, byte(len(pass))), pass...)
	start := time.Now()
	if _, err := c.Write(msg); err != nil {
		return loginResult{status: 255}, err
	}
	reply := make([]byte, 2)
	if _, err := io.ReadFull(c, reply); err != nil {
		return loginResult{status: 255, took: time.Since(start)}, fmt.Errorf("login %q: %w", user, err)
	}
	return loginResult{status: reply[1], took: time.Since(start)}, nil
}

// loginsAtOnce runs n logins from source at once, the i-th as user(i) with
// pass(i), and returns their results in order; errors (no answer) are logged.
func loginsAtOnce(t *testing.T, proxyAddr, source string, n int, user, pass func(i int) string) []loginResult {
	t.Helper()
	return loginsEvery(t, proxyAddr, source, n, 0, user, pass)
}

// loginsEvery is loginsAtOnce with the i-th login started i×gap after the first.
func loginsEvery(t *testing.T, proxyAddr, source string, n int, gap time.Duration, user, pass func(i int) string) []loginResult {
	t.Helper()
	res := make([]loginResult, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			time.Sleep(time.Duration(i) * gap)
			r, err := socksLoginFrom(proxyAddr, source, user(i), pass(i))
			if err != nil {
				t.Logf("login %d: %v", i, err)
			}
			res[i] = r
		})
	}
	close(start)
	wg.Wait()
	return res
}

// countStatus returns how many results have status s.
func countStatus(res []loginResult, s byte) int {
	n := 0
	for _, r := range res {
		if r.status == s {
			n++
		}
	}
	return n
}
