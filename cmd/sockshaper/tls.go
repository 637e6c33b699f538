package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy"
	"github.com/sockshaper/sockshaper/proxy/tlscert"
)

// certWatchEvery is how often the certificate's files are looked at: a
// renewal is in use within seconds, for one stat of each file per period.
const certWatchEvery = 5 * time.Second

// certExpiryWarning is how close to its expiry a certificate makes
// check-config and the start-up log warn.
const certExpiryWarning = 14 * 24 * time.Hour

// httpsListener is the HTTPS listener's certificate and client CAs.
type httpsListener struct {
	certs *tlscert.Store
}

// newHTTPS loads the certificate of tls.listen and gives the server its TLS
// configuration; nil without tls.listen. Expiry and failed loads go to the
// metrics.
func newHTTPS(d *daemon) (*httpsListener, error) {
	cfg := d.cfg
	if !cfg.TLS.Enabled() {
		return nil, nil
	}
	store, err := tlscert.New(cfg.TLS.CertFile, cfg.TLS.KeyFile, tlscert.Options{
		Logger: d.log.With("component", "tls"),
		Loaded: d.metrics.TLSCertificateLoaded,
		Failed: d.metrics.TLSCertificateLoadFailed,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Source, err)
	}
	h := &httpsListener{certs: store}
	if err := checkTLS(cfg, store.Current(), d.log.Warn); err != nil {
		return nil, err
	}
	tc, err := h.config(cfg)
	if err != nil {
		return nil, err
	}
	d.server.SetTLSConfig(tc)
	return h, nil
}

// config returns the listener's TLS configuration under cfg.
func (h *httpsListener) config(cfg *configs.Config) (*tls.Config, error) {
	cas, err := tlscert.LoadClientCAs(cfg.TLS.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Source, err)
	}
	return tlscert.ServerConfig(h.certs, cas), nil
}

// reload loads the certificate and client CAs again under a reloaded config,
// before the config goes into effect; an error keeps everything as it was.
// Adding, moving or removing tls.listen takes a restart (the reload says so):
// until then the listener keeps what it has.
func (h *httpsListener) reload(d *daemon, cfg *configs.Config) error {
	if h == nil || !cfg.TLS.Enabled() {
		return nil
	}
	tc, err := h.config(cfg)
	if err != nil {
		return err
	}
	if err := h.certs.Reload(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
		return err
	}
	if err := checkTLS(cfg, h.certs.Current(), d.log.Warn); err != nil {
		return err
	}
	d.server.SetTLSConfig(tc)
	return nil
}

// listen opens tls.listen.
func (h *httpsListener) listen(cfg *configs.Config) (net.Listener, error) {
	ln, err := proxy.Listen(context.Background(), cfg.TLS.Listen)
	if err != nil {
		return nil, fmt.Errorf("tls.listen: %w", err)
	}
	return ln, nil
}

// checkTLS checks a loaded pair against the config: the PAC's public name
// (http.pac.proxy_host) must be one the certificate covers, since browsers
// check it against the HTTPS proxy's certificate. A certificate that expires
// within certExpiryWarning, or has, is warned about through warn.
func checkTLS(cfg *configs.Config, p *tlscert.Pair, warn func(msg string, args ...any)) error {
	if host, _ := cfg.HTTP.PAC.ProxyHostPort(); host != "" {
		if err := p.Covers(host); err != nil {
			return fmt.Errorf("%s: http.pac.proxy_host %q: %w", cfg.Source, host, err)
		}
	}
	if left := time.Until(p.Leaf.NotAfter); left < certExpiryWarning {
		warn("the TLS certificate expires soon", "cert_file", cfg.TLS.CertFile,
			"not_after", p.Leaf.NotAfter.UTC().Format(time.RFC3339), "days_left", int(left.Hours()/24))
	}
	return nil
}

// checkTLSFiles is check-config's part for tls.listen: the pair loads, the
// client CAs load, the PAC's name is covered; the certificate's names and
// expiry are listed, with a warning when it expires soon.
func checkTLSFiles(cfg *configs.Config, stdout, stderr io.Writer) error {
	if !cfg.TLS.Enabled() {
		return nil
	}
	p, err := tlscert.Load(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Source, err)
	}
	if _, err := tlscert.LoadClientCAs(cfg.TLS.ClientCAFile); err != nil {
		return fmt.Errorf("%s: %w", cfg.Source, err)
	}
	err = checkTLS(cfg, p, func(msg string, args ...any) {
		fmt.Fprintf(stderr, "warning: %s: tls.cert_file %s expires %s\n", msg, cfg.TLS.CertFile, p.Leaf.NotAfter.UTC().Format(time.RFC3339))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tls: %s serves %s (names %v, expires %s)\n", cfg.TLS.Listen, p.Leaf.Subject,
		p.Leaf.DNSNames, p.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}
