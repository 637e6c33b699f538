package metrics

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// startAdminServer serves the admin handler through NewAdminServer on a real
// listener on 127.0.0.1:0 and returns its address.
func startAdminServer(t *testing.T) (*AdminServer, string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	New(reg, Options{})
	srv := NewAdminServer(NewAdminHandler(reg, nil, false, nil), false, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// open returns the connections the server holds.
func (e *connEvictor) open() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns)
}

// scrape fetches /metrics on a new connection and fails the test unless it
// succeeds within 2 s (the connection waits for nothing a hostile client holds).
func scrape(t *testing.T, addr string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape while the cap is held: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("scrape: %d, %v", resp.StatusCode, err)
	}
}

// TestAdminServerMakesRoomForScrapers fills the cap three ways (idle
// kept-alive connections, connections that never send a request, connections
// whose answers are never read) and checks each time that the server holds no
// more than the cap and a scraper still gets in.
func TestAdminServerMakesRoomForScrapers(t *testing.T) {
	for name, hold := range map[string]func(net.Conn){
		"idle keep-alive": func(c net.Conn) {
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				resp.Body.Close()
			}
		},
		"no request": func(c net.Conn) { c.Write([]byte("GET /metrics HTTP/1.1\r\n")) },
		"never reads": func(c net.Conn) {
			c.Write([]byte(strings.Repeat("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 200)))
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv, addr := startAdminServer(t)
			for range 2 * AdminMaxConns {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				hold(c)
			}
			for range 5 {
				scrape(t, addr)
				if n := srv.conns.open(); n > AdminMaxConns {
					t.Fatalf("server holds %d connections, cap %d", n, AdminMaxConns)
				}
			}
		})
	}
}

// TestAdminServerTimesOutSlowHeaders: a client that starts a request and never
// finishes its headers is closed after the header timeout.
func TestAdminServerTimesOutSlowHeaders(t *testing.T) {
	_, addr := startAdminServer(t)
	start := time.Now() // the server's clock starts at accept, after this
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: a\r\n"))
	c.SetReadDeadline(start.Add(3 * adminReadHeaderTimeout))
	io.Copy(io.Discard, c)
	if waited := time.Since(start); waited < adminReadHeaderTimeout || waited > 2*adminReadHeaderTimeout {
		t.Errorf("slow client closed after %v, want about %v", waited, adminReadHeaderTimeout)
	}
}

func TestAdminServerTimeouts(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		s := NewAdminServer(http.NotFoundHandler(), pprof, nil)
		if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
			t.Errorf("pprof %v: a timeout or limit is unset: %+v", pprof, s.Server)
		}
		// net/http/pprof refuses a profile longer than the write timeout; the
		// default profile is 30 s.
		if want := 30 * time.Second; pprof && s.WriteTimeout <= want || !pprof && s.WriteTimeout <= 0 {
			t.Errorf("pprof %v: WriteTimeout %v", pprof, s.WriteTimeout)
		}
	}
}
