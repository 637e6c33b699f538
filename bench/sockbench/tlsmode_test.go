package main

import (
	"crypto/tls"
	"io"
	"testing"
)

// TestTLSOptions checks the HTTPS proxy flags: what each sets, and the
// combinations refused.
func TestTLSOptions(t *testing.T) {
	o, err := parseOptions("churn", []string{"-proxy", "127.0.0.1:1", "-h2", "-h2-conns", "4", "-kex", "x25519", "-resume", "-server-name", "proxy.bench"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.tls.on || !o.http || o.tls.h2Conns != 4 {
		t.Errorf("-h2: tls %v, http %v, conns %d; want TLS, CONNECT, 4", o.tls.on, o.http, o.tls.h2Conns)
	}
	cfg, err := o.tls.config(o.proxy)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "proxy.bench" || cfg.NextProtos[0] != "h2" || cfg.ClientSessionCache == nil ||
		len(cfg.CurvePreferences) != 1 || cfg.CurvePreferences[0] != tls.X25519 {
		t.Errorf("config: name %q, ALPN %v, cache %v, curves %v", cfg.ServerName, cfg.NextProtos, cfg.ClientSessionCache != nil, cfg.CurvePreferences)
	}
	for _, bad := range [][]string{
		{"-proxy", "127.0.0.1:1", "-resume"},
		{"-proxy", "127.0.0.1:1", "-tls", "-kex", "rsa"},
		{"-proxy", "127.0.0.1:1", "-h2", "-h2-conns", "0"},
		{"-proxy", "127.0.0.1:1", "-h2", "-h2-conns", "257"},
		{"-direct", "-tls"},
		{"-proxy", "127.0.0.1:1", "-tls", "-ca", "/nonexistent/ca.pem"},
	} {
		if _, err := parseOptions("churn", bad, io.Discard); err == nil {
			t.Errorf("%v accepted, want an error", bad)
		}
	}
}
