package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// streamServer is an HTTP origin whose /stream sends bytes, chunked, until the
// client goes away.
func streamServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// connectThrough opens an HTTP CONNECT tunnel to target as user.
func connectThrough(t *testing.T, proxyAddr, user, target string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	u := url.UserPassword(user, password)
	r := http.Request{Header: http.Header{}}
	p, _ := u.Password()
	r.SetBasicAuth(u.Username(), p)
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n", target, target, r.Header.Get("Authorization"))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 || br.Buffered() != 0 {
		t.Fatalf("CONNECT %s: %v %v", target, resp, err)
	}
	return c
}

// TestSOCKS5AndHTTPSessionsShareTheUsersBucket runs one user's downloads over
// SOCKS5, HTTP CONNECT and a forwarded HTTP request at once: together they get
// the user's one download rate, and each of them moves.
func TestSOCKS5AndHTTPSessionsShareTheUsersBucket(t *testing.T) {
	const limit = 2 << 20 // 2 MiB/s
	d := startDaemon(t, shapedConfig("2MiB"), usersFile())
	src, web := sourceServer(t), streamServer(t)
	readers := map[string]io.ReadCloser{
		"socks5 1":  dialThrough(t, d.listen, "alice", src),
		"socks5 2":  dialThrough(t, d.listen, "alice", src),
		"connect 1": connectThrough(t, d.listen, "alice", src),
		"connect 2": connectThrough(t, d.listen, "alice", src),
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: d.listen, User: url.UserPassword("alice", password)}),
	}}
	resp, err := client.Get(web.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	readers["forwarded"] = resp.Body
	counts := map[string]*atomic.Int64{}
	var wg sync.WaitGroup
	for name, r := range readers {
		count := &atomic.Int64{}
		counts[name] = count
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := r.Read(buf)
				count.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
	}
	snapshot := func() map[string]int64 {
		m := map[string]int64{}
		for name, c := range counts {
			m[name] = c.Load()
		}
		return m
	}
	time.Sleep(time.Second) // past the bursts and the start of every session
	before, start := snapshot(), time.Now()
	time.Sleep(5 * time.Second)
	after, window := snapshot(), time.Since(start)
	for _, r := range readers {
		r.Close()
	}
	wg.Wait()
	var total int64
	for name := range counts {
		moved := after[name] - before[name]
		total += moved
		if moved < limit/50 {
			t.Errorf("%s moved %d bytes in %v: starved", name, moved, window)
		}
	}
	rate := float64(total) / window.Seconds()
	t.Logf("one user, SOCKS5 + CONNECT + forwarded: %.3f MiB/s (limit 2 MiB/s); by session %v", rate/(1<<20), after)
	if rate < 0.9*limit || rate > 1.1*limit {
		t.Errorf("together %.3f MiB/s, want the user's 2 MiB/s ±10%%", rate/(1<<20))
	}
}
