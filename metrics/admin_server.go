package metrics

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/netutil"
)

// Bounds of the admin endpoint, apart from the proxy's session budget, so that
// clients of the admin port cannot take descriptors from the proxy, and a scraper
// still gets through while they try.
const (
	// AdminMaxConns caps the admin endpoint's open connections. Prometheus keeps
	// one per server scraping, an operator's curl or a health check one more each:
	// 64 leaves room for several of each and bounds what hostile clients can hold
	// to 64 descriptors. When the cap is reached, a new connection takes the place
	// of an old one (see [AdminServer]), so hostile clients cannot lock a scraper out.
	AdminMaxConns = 64
	// adminReadHeaderTimeout: a scraper sends its request headers in one packet.
	adminReadHeaderTimeout = 5 * time.Second
	// adminReadTimeout bounds the whole request; the endpoint takes no bodies.
	adminReadTimeout = 10 * time.Second
	// adminWriteTimeout bounds an answer: /metrics is tens of kB, written in
	// milliseconds to a client that reads.
	adminWriteTimeout = 15 * time.Second
	// adminPprofWriteTimeout replaces it when pprof is on: /debug/pprof/profile
	// and /trace gather for ?seconds= (30 by default) before they write, and
	// net/http/pprof refuses a duration longer than the write timeout.
	adminPprofWriteTimeout = 75 * time.Second
	// adminIdleTimeout keeps a scraper's connection between scrapes at
	// Prometheus's default interval of one minute.
	adminIdleTimeout = 2 * time.Minute
	// adminMaxHeaderBytes: a scrape's headers are a few hundred bytes.
	adminMaxHeaderBytes = 8 << 10
)

// AdminServer is the admin endpoint's HTTP server: the embedded [http.Server]
// with timeouts on every phase of a request, and at most [AdminMaxConns]
// connections. Create it with [NewAdminServer] and serve it with
// [AdminServer.Serve]; stop it with the embedded Shutdown or Close.
//
// When a connection arrives and the cap is reached, an older connection is
// closed to make room, in this order: the one idle the longest (a kept-alive
// connection between requests; clients reconnect), then the oldest that has not
// sent its request yet, then the oldest request in progress (a client that does
// not read its answer). A scraper thus gets a connection at once however many
// connections hostile clients hold; under such a flood a long request (a pprof
// profile) may be cut.
type AdminServer struct {
	*http.Server
	conns *connEvictor
}

// NewAdminServer returns the server for h; pprof must say whether h serves
// /debug/pprof, whose profiles need a longer write timeout. A nil logger
// discards the server's errors.
func NewAdminServer(h http.Handler, pprof bool, logger *slog.Logger) *AdminServer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	write := adminWriteTimeout
	if pprof {
		write = adminPprofWriteTimeout
	}
	ev := &connEvictor{max: AdminMaxConns, conns: map[net.Conn]connPhase{}}
	return &AdminServer{
		Server: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: adminReadHeaderTimeout,
			ReadTimeout:       adminReadTimeout,
			WriteTimeout:      write,
			IdleTimeout:       adminIdleTimeout,
			MaxHeaderBytes:    adminMaxHeaderBytes,
			ConnState:         ev.track,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		},
		conns: ev,
	}
}

// Serve accepts connections on ln, at most [AdminMaxConns] open at once, until
// the server is shut down; it returns what [http.Server.Serve] returns.
func (s *AdminServer) Serve(ln net.Listener) error {
	return s.Server.Serve(netutil.LimitListener(ln, s.conns.max))
}

// connPhase is where a connection is and since when.
type connPhase struct {
	state http.ConnState
	since time.Time
}

// connEvictor follows the server's connections through its ConnState hook and
// closes one when a new one fills the cap, so that the limit listener always
// has a free slot for the next connection instead of leaving it in the kernel's
// queue behind hostile ones.
type connEvictor struct {
	max   int
	mu    sync.Mutex
	conns map[net.Conn]connPhase
}

func (e *connEvictor) track(c net.Conn, state http.ConnState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch state {
	case http.StateNew:
		e.conns[c] = connPhase{state, time.Now()}
		if len(e.conns) >= e.max {
			if victim := e.victim(c); victim != nil {
				delete(e.conns, victim)
				victim.Close() // wakes its goroutine, which then reports StateClosed
			}
		}
	case http.StateActive, http.StateIdle:
		if _, ok := e.conns[c]; ok { // an evicted connection stays forgotten
			e.conns[c] = connPhase{state, time.Now()}
		}
	case http.StateClosed, http.StateHijacked:
		delete(e.conns, c)
	}
}

// victim picks the connection to close for newcomer: the longest idle, else the
// oldest waiting for its request, else the oldest request in progress.
func (e *connEvictor) victim(newcomer net.Conn) net.Conn {
	var best net.Conn
	var bestPhase connPhase
	for c, p := range e.conns {
		if c == newcomer {
			continue
		}
		if best == nil || rank(p.state) < rank(bestPhase.state) ||
			rank(p.state) == rank(bestPhase.state) && p.since.Before(bestPhase.since) {
			best, bestPhase = c, p
		}
	}
	return best
}

// rank orders connection states by how cheaply a connection in them is closed.
func rank(s http.ConnState) int {
	switch s {
	case http.StateIdle:
		return 0
	case http.StateNew:
		return 1
	}
	return 2
}
