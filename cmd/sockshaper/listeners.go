package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy"
	usagestore "github.com/sockshaper/sockshaper/usage"
)

// listenHTTP opens http.listen, the listener of HTTP proxy clients only, when it
// is set; nil otherwise.
func (d *daemon) listenHTTP() (net.Listener, error) {
	if d.cfg.HTTP.Listen == "" {
		return nil, nil
	}
	ln, err := proxy.Listen(context.Background(), d.cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	return ln, nil
}

// startAdmin serves /metrics, /healthz and /readyz when admin_listen is set.
func (d *daemon) startAdmin() (*http.Server, string, error) {
	if d.cfg.AdminListen == "" {
		return nil, "", nil
	}
	ln, err := net.Listen("tcp", d.cfg.AdminListen)
	if err != nil {
		return nil, "", fmt.Errorf("admin listen: %w", err)
	}
	h := metrics.NewAdminHandler(d.reg, d.ready.Load, d.cfg.Metrics.Pprof, d.log,
		metrics.Route{Pattern: "GET " + usagestore.APIPath, Handler: usagestore.Handler(d.usage, d.shaper.OpenWindows)})
	srv := metrics.NewAdminServer(h, d.cfg.Metrics.Pprof, d.log)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("admin server", "err", err)
		}
	}()
	// No session may reach the admin endpoint, whatever the deny list allows.
	d.server.AddOwnAddr(ln.Addr().(*net.TCPAddr).AddrPort())
	return srv.Server, ln.Addr().String(), nil
}
