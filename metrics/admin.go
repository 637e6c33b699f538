package metrics

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	httppprof "net/http/pprof"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewAdminHandler returns the handler of the admin HTTP server:
//
//   - GET /metrics serves everything g gathers in the Prometheus exposition format.
//     Gathering errors are logged to logger and the metrics that could be gathered
//     are still served.
//   - GET /healthz answers 200 "ok" while the process serves HTTP at all.
//   - GET /readyz answers 200 "ok" while ready reports true and 503 "not ready"
//     otherwise (after SIGTERM, during the drain), each followed by the notes
//     ready returns, a line each. A nil ready is always ready.
//   - /debug/pprof/ and its sub-paths serve net/http/pprof, only when pprof is true;
//     profiles expose memory contents, so this stays off unless an operator turns it
//     on for an admin listener nobody else reaches.
//   - each of routes, such as the usage view (GET /api/v1/users), which another
//     package owns and the daemon mounts here.
//
// Every other path answers 404, and other methods on the paths above 405. A nil
// logger discards. The handler never serves [http.DefaultServeMux], where the
// net/http/pprof package registers itself.
func NewAdminHandler(g prometheus.Gatherer, ready Readiness, pprof bool, logger *slog.Logger, routes ...Route) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      errorLogger{logger},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, notes := true, []string(nil)
		if ready != nil {
			ok, notes = ready()
		}
		code, body := http.StatusOK, "ok"
		if !ok {
			code, body = http.StatusServiceUnavailable, "not ready"
		}
		writeText(w, code, strings.Join(append([]string{body}, notes...), "\n"))
	})
	if pprof {
		registerPprof(mux)
	}
	for _, r := range routes {
		mux.Handle(r.Pattern, r.Handler)
	}
	return mux
}

// Readiness reports whether the daemon takes traffic, for /readyz, and notes:
// problems that are no reason for a balancer to take traffic away from it (a
// full disk would take it away from every instance), which /readyz's body
// shows, a line each, for the operator and the health check's log. It must be
// cheap and safe for concurrent use.
type Readiness func() (ready bool, notes []string)

// Ready is a [Readiness] without notes, from a readiness flag such as an
// [sync/atomic.Bool]'s Load.
func Ready(ready func() bool) Readiness {
	return func() (bool, []string) { return ready(), nil }
}

// Route is one more handler of the admin endpoint: Pattern is an
// [http.ServeMux] pattern with its method, such as "GET /api/v1/users".
type Route struct {
	Pattern string
	Handler http.Handler
}

// registerPprof serves net/http/pprof under /debug/pprof/ on mux. Index also serves
// the named profiles (heap, goroutine, allocs, block, mutex, threadcreate).
func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
}

// writeText writes a short plain-text answer.
func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// errorLogger adapts a [slog.Logger] to [promhttp.Logger].
type errorLogger struct{ l *slog.Logger }

// Println logs a gathering or encoding error of the /metrics handler.
func (e errorLogger) Println(v ...any) {
	e.l.Error("serving metrics failed", "error", fmt.Sprint(v...))
}
