package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
)

// The HTTPS proxy modes: -tls speaks TLS to the proxy first (an HTTPS proxy,
// as Squid's https_port or sockshaper's tls.listen), then CONNECT inside it
// (-http) or SOCKS5; -h2 carries every session of a run as a CONNECT stream
// on -h2-conns HTTP/2 connections to the proxy, as Chromium does with an
// HTTPS proxy (see h2client.go).

// maxH2Conns caps -h2-conns.
const maxH2Conns = 256

// tlsOptions are the flags of the HTTPS proxy modes. The zero value is no TLS.
type tlsOptions struct {
	on         bool   // -tls: TLS to the proxy
	caFile     string // -ca: PEM CA certificates trusted for the proxy
	serverName string // -server-name: the name verified and sent as SNI
	resume     bool   // -resume: keep a session cache, so later handshakes resume
	h2         bool   // -h2: sessions are CONNECT streams on HTTP/2 connections
	h2Conns    int    // -h2-conns: HTTP/2 connections the sessions share
	kex        string // -kex: the key exchanges offered

	once   sync.Once
	client *tlsClient // made by [tlsOptions.tlsClient]
}

// register adds the TLS flags to fs.
func (t *tlsOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&t.on, "tls", false, "speak TLS to the proxy (an HTTPS proxy); with -http, CONNECT inside TLS, else SOCKS5 inside TLS")
	fs.StringVar(&t.caFile, "ca", "", "PEM file of the CA that signed the proxy's certificate (-tls, -h2); empty: the system's")
	fs.StringVar(&t.serverName, "server-name", "", "name to verify the proxy's certificate against and send as SNI (default: the -proxy host)")
	fs.BoolVar(&t.resume, "resume", false, "resume TLS sessions (a client session cache); without it every handshake is a full one")
	fs.BoolVar(&t.h2, "h2", false, "HTTP/2 to the proxy over TLS: each session is a CONNECT stream on one of -h2-conns connections")
	fs.IntVar(&t.h2Conns, "h2-conns", 1, "-h2: HTTP/2 connections the sessions are spread over, round robin")
	fs.StringVar(&t.kex, "kex", "default", "key exchanges offered: default (Go's: X25519MLKEM768 first, as browsers offer) or x25519 (X25519 alone, so that every server agrees on the same)")
}

// check validates the flags against the rest of o.
func (t *tlsOptions) check(o *options) error {
	if t.kex == "" { // a scenario without the TLS flags
		t.kex = "default"
	}
	switch {
	case !t.on && !t.h2:
		if t.caFile != "" || t.serverName != "" || t.resume || t.kex != "default" {
			return errors.New("-ca, -server-name, -resume and -kex need -tls or -h2")
		}
		return nil
	case o.direct:
		return errors.New("-tls and -h2 speak to a proxy: not with -direct")
	case t.kex != "default" && t.kex != "x25519":
		return fmt.Errorf("-kex: want default or x25519, got %q", t.kex)
	case t.h2 && (t.h2Conns < 1 || t.h2Conns > maxH2Conns):
		return fmt.Errorf("-h2-conns: want 1 to %d, got %d", maxH2Conns, t.h2Conns)
	}
	if t.h2 {
		t.on = true
		o.http = true
	}
	_, err := t.config(o.proxy)
	return err
}

// tlsClient is what the dialers of one run share: the TLS configuration (and
// so its session cache) and the HTTP/2 connections.
type tlsClient struct {
	cfg *tls.Config
	h2  *h2Client // nil without -h2

	handshakes, resumed atomic.Int64
}

// tlsClientOf returns the run's TLS client, made at the first call; nil
// without -tls.
func (t *tlsOptions) tlsClientOf(o *options) *tlsClient {
	if !t.on || o.direct {
		return nil
	}
	t.once.Do(func() {
		cfg, _ := t.config(o.proxy) // checked in check
		t.client = &tlsClient{cfg: cfg}
		if t.h2 {
			t.client.h2 = newH2Client(o.proxy, t.client, t.h2Conns, o.timeout)
		}
	})
	return t.client
}

// config returns the TLS configuration for the proxy at proxyAddr.
func (t *tlsOptions) config(proxyAddr string) (*tls.Config, error) {
	name := t.serverName
	if name == "" {
		host, _, err := net.SplitHostPort(proxyAddr)
		if err != nil {
			return nil, fmt.Errorf("-proxy: %w", err)
		}
		name = host
	}
	cfg := &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if t.h2 {
		cfg.NextProtos = []string{"h2"}
	}
	if t.kex == "x25519" {
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	if t.resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	}
	if t.caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(t.caFile)
	if err != nil {
		return nil, fmt.Errorf("-ca: %w", err)
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-ca %s: no PEM certificate in it", t.caFile)
	}
	return cfg, nil
}

// handshake runs a client handshake on conn, under conn's deadline and ctx,
// and counts it. Errors are [*stepError]s of step "tls".
func (c *tlsClient) handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	tc := tls.Client(conn, c.cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, &stepError{"tls", err}
	}
	c.handshakes.Add(1)
	if tc.ConnectionState().DidResume {
		c.resumed.Add(1)
	}
	return tc, nil
}

// tlsCounts is how many TLS handshakes a run made and how many of them
// resumed a session, for its result; nil without TLS.
type tlsCounts struct {
	Handshakes int64 `json:"handshakes"`
	Resumed    int64 `json:"resumed"`
}

// counts returns the handshakes so far; nil for a nil client.
func (c *tlsClient) counts() *tlsCounts {
	if c == nil {
		return nil
	}
	return &tlsCounts{Handshakes: c.handshakes.Load(), Resumed: c.resumed.Load()}
}

// Close closes the run's HTTP/2 connections; nil is a no-op.
func (c *tlsClient) Close() {
	if c != nil && c.h2 != nil {
		c.h2.Close()
	}
}
