// Package tlscert owns the HTTPS listener's certificate: it loads the PEM
// certificate chain and key, hands them to TLS handshakes, loads them again on
// demand (a reload, SIGHUP) and when the files change on disk (certbot, an
// internal CA's renewal), and says when the certificate expires. A pair that
// does not load keeps the one in use: a bad renewal never takes the listener
// down, and connections already up are never touched.
package tlscert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Pair is a loaded certificate and key.
type Pair struct {
	Cert *tls.Certificate
	// Leaf is the certificate the proxy presents, parsed.
	Leaf  *x509.Certificate
	stamp stamp
}

// Load reads certFile (a PEM chain, leaf first) and keyFile (its PEM private
// key) and checks that they belong together. Errors name the file at fault.
func Load(certFile, keyFile string) (*Pair, error) {
	st, err := stampOf(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file %s, tls.key_file %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls.cert_file %s: %w", certFile, err)
		}
	}
	return &Pair{Cert: &cert, Leaf: cert.Leaf, stamp: st}, nil
}

// Covers reports, as an error naming the certificate's names, when name is not
// one the certificate is valid for; nil when it is.
func (p *Pair) Covers(name string) error {
	if err := p.Leaf.VerifyHostname(name); err != nil {
		return fmt.Errorf("the certificate does not cover %q (it names %v): %w", name, append(p.Leaf.DNSNames, ipStrings(p.Leaf)...), err)
	}
	return nil
}

func ipStrings(c *x509.Certificate) []string {
	var out []string
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// Options are a Store's parts besides its files.
type Options struct {
	// Logger hears loads and failed loads. Nil discards.
	Logger *slog.Logger
	// Loaded hears the expiry of every pair loaded, the first one included:
	// the metrics' expiry gauge. Nil: none.
	Loaded func(notAfter time.Time)
	// Failed hears a load that failed and kept the pair in use. Nil: none.
	Failed func()
}

// Store serves the certificate in use to handshakes and replaces it when its
// files change. Create it with [New]; it is safe for concurrent use.
type Store struct {
	opts Options
	cur  atomic.Pointer[Pair]

	mu        sync.Mutex // serializes loads and file changes
	certFile  string
	keyFile   string
	lastError string // of the last failed load, so a broken file logs once
	seen      stamp  // the files as the last load found them, loaded or not
}

// New loads certFile and keyFile; it fails when they do not load.
func New(certFile, keyFile string, opts Options) (*Store, error) {
	p, err := Load(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{opts: opts, certFile: certFile, keyFile: keyFile, seen: p.stamp}
	s.install(p)
	return s, nil
}

// GetCertificate hands the certificate in use to a handshake: it is
// tls.Config.GetCertificate.
func (s *Store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load().Cert, nil
}

// Current returns the pair in use.
func (s *Store) Current() *Pair { return s.cur.Load() }

// Reload loads the files again, or the files a reloaded config names (empty:
// the same), and puts the pair in use; on an error the pair in use stays and
// the error says why. Connections already up keep the certificate they shook
// hands with; new handshakes get the new one.
func (s *Store) Reload(certFile, keyFile string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if certFile != "" {
		s.certFile, s.keyFile = certFile, keyFile
	}
	return s.loadLocked()
}

// loadLocked loads the store's files and installs them; s.mu is held.
func (s *Store) loadLocked() error {
	s.seen, _ = stampOf(s.certFile, s.keyFile)
	p, err := Load(s.certFile, s.keyFile)
	if err != nil {
		if s.opts.Failed != nil {
			s.opts.Failed()
		}
		if msg := err.Error(); msg != s.lastError {
			s.lastError = msg
			s.opts.Logger.Error("TLS certificate not loaded; keeping the one in use", "err", err)
		}
		return err
	}
	s.lastError = ""
	s.install(p)
	s.opts.Logger.Info("TLS certificate loaded", "cert_file", s.certFile, "subject", p.Leaf.Subject.String(),
		"names", p.Leaf.DNSNames, "not_after", p.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func (s *Store) install(p *Pair) {
	s.cur.Store(p)
	if s.opts.Loaded != nil {
		s.opts.Loaded(p.Leaf.NotAfter)
	}
}

// Watch looks at the files every interval until ctx ends, and loads them
// again when either changed (its size, time or inode: certbot replaces a
// symbolic link's target, an internal CA overwrites the file). A pair half
// written when it looks fails to load and is tried again at the next change.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.loadIfChanged()
		}
	}
}

func (s *Store) loadIfChanged() {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := stampOf(s.certFile, s.keyFile)
	if err == nil && st == s.seen {
		return // as the last load found them, whether it loaded or not
	}
	if err != nil && errors.Is(err, os.ErrNotExist) && s.lastError == err.Error() {
		return // still missing: said once
	}
	s.loadLocked()
}
