package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sockshaper/sockshaper/cluster"
	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/tlscert"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
	"github.com/sockshaper/sockshaper/shaping"
	usagestore "github.com/sockshaper/sockshaper/usage"
)

// daemon is the running process: the parts main wires together.
type daemon struct {
	opts    options
	log     *slog.Logger
	access  *reopenableFile // nil when accounting lines go to standard error
	cfg     *configs.Config
	metrics *metrics.Metrics
	reg     *prometheus.Registry
	shaper  *shaping.Registry
	usage   *usagestore.Store
	server  *proxy.Server
	dir     *auth.Directory // the directory in use, nil without auth.ldap
	krb     *kerberosState  // the Kerberos login across reloads
	node    *cluster.Node   // the cluster's exchange, nil without cluster.redis
	https   *httpsListener  // tls.listen's certificate, nil without it
	ready   atomic.Bool
	build   buildInfo
	notify  notifier
}

func serve(o options, stderr io.Writer) int {
	d, err := newDaemon(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sockshaper:", err)
		return 1
	}
	defer d.closeUsage() // also on a failed start, so the state_dir lock goes
	defer d.closeAccess()
	if err := d.run(); err != nil {
		d.log.Error("exiting", "err", err)
		return 1
	}
	return 0
}

func newDaemon(o options, stderr io.Writer) (*daemon, error) {
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return nil, err
	}
	d := &daemon{opts: o, log: log, build: currentBuild(), notify: notifier{log}}
	accounting := log
	if o.accessLog != "" {
		onError := func(err error) { log.Error("write access log; its buffered lines are lost", "err", err) }
		if d.access, err = openReopenable(o.accessLog, onError); err != nil {
			return nil, err
		}
		accounting, _ = newLogger(d.access, o.logFormat, "info")
	}
	cfg, users, err := loadAll(o.configPath)
	if err != nil {
		return nil, err
	}
	d.cfg = cfg
	// Usage first: the shaper asks it who is over a quota. Its events reach the
	// shaper and metrics made below; none fires before the daemon serves.
	if d.usage, err = usagestore.New(cfg, usagestore.Options{Logger: log, OnQuota: d.quotaEvent}); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	d.reg = reg
	d.shaper = shaping.NewRegistry(cfg.Shaping, shaping.WithQuota(d.usage))
	d.metrics = metrics.New(reg, metrics.Options{
		PerUser:           cfg.Metrics.PerUser,
		PerUserMaxUsers:   cfg.Metrics.PerUserMaxUsers,
		UsersActive:       func() float64 { return float64(d.shaper.ActiveUsers()) },
		Apps:              shaping.NewClassifier(cfg.Apps).Names(),
		QuotaGroups:       quotaGroups(cfg),
		QuotaUsage:        d.usage.QuotaUsage,
		TLSFailureReasons: tlscert.FailureReasons(),
	})
	reg.MustRegister(metrics.NewBuildInfo(metrics.BuildInfo{Version: d.build.Version, Revision: d.build.Revision, GoVersion: d.build.GoVersion}))
	d.registerUsageState(reg)
	d.metrics.ConfigLoaded(time.Now())
	v, dir, err := newVerifier(cfg, users, log, d.metrics)
	if err != nil {
		return nil, err
	}
	d.dir = dir
	d.krb = newKerberosState(log)
	v, kv, err := d.krb.withTickets(cfg, v, dir)
	if err != nil {
		return nil, err
	}
	d.krb.use(kv, cfg.Auth.Kerberos)
	logDirectory(log, cfg)
	if d.node, err = newCluster(d); err != nil {
		return nil, err
	}
	d.server = proxy.New(cfg, v, proxy.Options{Options: tunnel.Options{
		Logger:     log,
		Accounting: accounting,
		Recorder:   usageRecorder{Recorder: d.metrics, usage: d.usage},
		Shaper:     d.shaper,
		Usage:      d.usage,
		UserSlots:  d.userSlots(),
	}})
	if d.https, err = newHTTPS(d); err != nil {
		return nil, err
	}
	return d, nil
}

// run serves until SIGTERM or SIGINT, reloading on SIGHUP, then drains.
func (d *daemon) run() error {
	ln, err := proxy.Listen(context.Background(), d.cfg.Listen)
	if err != nil {
		return err
	}
	httpLn, err := d.listenHTTP()
	if err != nil {
		ln.Close()
		return err
	}
	var tlsLn net.Listener
	if d.https != nil {
		if tlsLn, err = d.https.listen(d.cfg); err != nil {
			ln.Close()
			if httpLn != nil {
				httpLn.Close()
			}
			return err
		}
	}
	admin, adminAddr, err := d.startAdmin()
	if err != nil {
		ln.Close()
		if httpLn != nil {
			httpLn.Close()
		}
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go d.shaper.Run(ctx)
	go d.usage.Run(ctx)
	go d.runCluster(ctx)
	d.krb.run(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var tlsAddr net.Addr
	if tlsLn != nil {
		tlsAddr = tlsLn.Addr()
	}
	d.server.Listening(ln.Addr(), tlsAddr)
	served := make(chan error, 3)
	go func() { served <- d.server.Serve(ln) }()
	httpAddr, tlsListen := "", ""
	if httpLn != nil {
		httpAddr = httpLn.Addr().String()
		go func() { served <- d.server.ServeHTTPProxy(httpLn) }()
	}
	if tlsLn != nil {
		tlsListen = tlsLn.Addr().String()
		go func() { served <- d.server.ServeTLS(tlsLn) }()
		go d.https.certs.Watch(ctx, certWatchEvery)
	}
	d.ready.Store(true)
	logBudgets(d.log, d.server.Budgets())
	logShaping(d.log, d.cfg)
	d.log.Info("serving", "listen", ln.Addr().String(), "http_listen", httpAddr, "tls_listen", tlsListen, "admin", adminAddr, "config", d.cfg.Source, "version", d.build.Version, "revision", d.build.Revision)
	d.notify.ready()
	for {
		select {
		case <-hup:
			d.notify.reloading()
			d.reload()
			d.notify.ready()
		case err := <-served:
			return fmt.Errorf("serve: %w", err)
		case <-ctx.Done():
			d.notify.stopping()
			return d.drain(admin)
		}
	}
}

// drain stops accepting, turns /readyz to 503, gives sessions timeouts.drain, then
// closes the rest. A fresh context: the signal's is already cancelled.
func (d *daemon) drain(admin *http.Server) error {
	d.ready.Store(false)
	timeout := d.server.Config().Timeouts.Drain
	d.log.Info("draining", "sessions", d.server.ActiveSessions(), "timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := d.server.Shutdown(ctx); err != nil {
		d.log.Warn("drain timeout; closed remaining sessions", "err", err)
	}
	if d.dir != nil {
		d.dir.Close()
	}
	d.closeUsage()  // after the sessions, whose last bytes are counted by now
	d.closeAccess() // after the sessions' accounting lines
	if admin != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		defer acancel()
		admin.Shutdown(actx)
	}
	d.log.Info("stopped")
	return nil
}

// closeAccess writes out the buffered accounting lines; later ones are
// written as they come.
func (d *daemon) closeAccess() {
	if d.access != nil {
		d.access.Close()
	}
}

// reload re-reads the config and users file; on any error the old ones stay.
func (d *daemon) reload() {
	if d.access != nil {
		if err := d.access.Reopen(); err != nil {
			d.log.Error("reopen access log", "err", err)
		}
	}
	cfg, users, err := loadAll(d.opts.configPath)
	var v auth.Verifier
	var dir *auth.Directory
	var kv *auth.Kerberos
	if err == nil {
		v, dir, err = newVerifier(cfg, users, d.log, d.metrics)
	}
	if err == nil {
		v, kv, err = d.krb.withTickets(cfg, v, dir)
	}
	if err == nil {
		err = d.https.reload(d, cfg)
	}
	if err != nil {
		if dir != nil {
			dir.Close()
		}
		d.metrics.ConfigReloaded(false, time.Now())
		d.log.Error("reload failed; keeping the running config", "err", err)
		return
	}
	if cfg.Listen != d.cfg.Listen || cfg.AdminListen != d.cfg.AdminListen || cfg.HTTP.Listen != d.cfg.HTTP.Listen || cfg.TLS.Listen != d.cfg.TLS.Listen {
		d.log.Warn("listen, http.listen, tls.listen and admin_listen changes take effect at restart", "listen", d.cfg.Listen,
			"http_listen", d.cfg.HTTP.Listen, "tls_listen", d.cfg.TLS.Listen, "admin_listen", d.cfg.AdminListen)
	}
	if cfg.Cluster != d.cfg.Cluster {
		d.log.Warn("cluster changes take effect at restart", "redis", d.cfg.Cluster.Redis, "name", d.cfg.Cluster.Name)
	}
	if cfg.StateDir != d.cfg.StateDir {
		d.log.Warn("state_dir changes take effect at restart", "state_dir", d.cfg.StateDir)
	}
	// Quotas, buckets and metric series first: a session the server admits on
	// the new config must find its new limits and its app class's series.
	d.usage.Update(cfg)
	d.metrics.InitQuotaGroups(quotaGroups(cfg))
	d.shaper.Update(cfg.Shaping)
	d.metrics.InitApps(shaping.NewClassifier(cfg.Apps).Names())
	d.metrics.SetPerUser(cfg.Metrics.PerUser, cfg.Metrics.PerUserMaxUsers)
	revoked := d.server.Reload(cfg, v)
	d.krb.use(kv, cfg.Auth.Kerberos)
	// The old directory's logins still under way finish on their connections,
	// which close when they end; its idle ones close now.
	if d.dir != nil {
		d.dir.Close()
	}
	d.dir = dir
	d.metrics.ConfigReloaded(true, time.Now())
	n := 0
	if users != nil {
		n = users.Users()
	}
	d.log.Info("reloaded", "config", cfg.Source, "users", n, "sessions_revoked", revoked)
	logDirectory(d.log, cfg)
	logBudgets(d.log, d.server.Budgets())
	logShaping(d.log, cfg)
}

// logDirectory says which directory logins go to; it is not asked until a login
// comes, so an unreachable directory is no reason not to start.
func logDirectory(log *slog.Logger, cfg *configs.Config) {
	if l := cfg.Auth.LDAP; l.URL != "" {
		log.Info("directory login", "url", l.URL, "start_tls", l.StartTLS, "base_dn", l.BaseDN,
			"groups_mapped", len(l.Groups), "stale_window", l.StaleWindow)
	}
}

// logBudgets logs the descriptor limit and the connection budgets in force, and
// warns when explicit limits could exhaust the descriptors.
func logBudgets(log *slog.Logger, b proxy.Budgets) {
	log.Info("budgets", b.LogAttrs()...)
	if err := b.Fits(); err != nil {
		log.Warn("budgets exceed the descriptor limit", "err", err)
	}
}
