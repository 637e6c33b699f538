package configs

import (
	"net"
	"strconv"
	"strings"
)

// TLS is the HTTPS proxy listener: clients speak TLS to the proxy, so that no
// password crosses the network in the clear, and choose by ALPN between HTTP/2
// ("h2": many CONNECT streams on one connection) and HTTP/1.1 (as on the plain
// port; SOCKS5 inside TLS too).
type TLS struct {
	// Listen is the HTTPS proxy's address, host:port, such as "0.0.0.0:3129".
	// Empty: no TLS listener.
	Listen string `yaml:"listen"`
	// CertFile is a PEM file of the proxy's certificate chain, leaf first;
	// KeyFile its private key. Both are read at start, on SIGHUP and when
	// either file changes on disk (certbot, an internal CA's renewal); a pair
	// that does not load keeps the one in use. Relative paths are resolved
	// against the config file's folder.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, is a PEM file of CA certificates that clients'
	// certificates must chain to: the listener then requires a client
	// certificate (mutual TLS) before any request. Empty: no client
	// certificate is asked for.
	ClientCAFile string `yaml:"client_ca_file"`
	// MaxConcurrentStreams bounds the HTTP/2 streams one connection may have
	// open at once (tunnels and requests). At least 1; default 100.
	MaxConcurrentStreams int `yaml:"max_concurrent_streams"`
}

// Enabled reports whether the TLS listener is configured.
func (t *TLS) Enabled() bool { return t.Listen != "" }

// tlsDefaults returns the TLS listener's defaults.
func tlsDefaults() TLS { return TLS{MaxConcurrentStreams: 100} }

// tls checks the TLS listener's settings: the files are checked by loading
// them (see the tls package of proxy), not here.
func (v *validator) tls(c *Config) {
	t := &c.TLS
	v.hostPort(path("tls", "listen"), t.Listen, true)
	if !t.Enabled() {
		if c.Auth.RequireTLS && c.Auth.hasPasswords() {
			v.add(path("auth", "require_tls"), nil, "needs tls.listen: without a TLS listener no client could log in with a password")
		}
		return
	}
	for _, other := range []struct {
		name string
		addr string
	}{{"listen", c.Listen}, {"admin_listen", c.AdminListen}, {"http.listen", c.HTTP.Listen}} {
		if t.Listen == other.addr && !strings.HasSuffix(t.Listen, ":0") {
			v.add(path("tls", "listen"), nil, "must differ from "+other.name)
		}
	}
	if t.CertFile == "" {
		v.add(path("tls", "cert_file"), nil, "needed with tls.listen: the PEM certificate chain the proxy presents")
	}
	if t.KeyFile == "" {
		v.add(path("tls", "key_file"), nil, "needed with tls.listen: the PEM private key of tls.cert_file")
	}
	v.atLeastOne(path("tls", "max_concurrent_streams"), t.MaxConcurrentStreams)
}

// hasPasswords reports whether clients log in with passwords (a users file or
// a directory).
func (a *Auth) hasPasswords() bool { return a.UsersFile != "" || a.LDAP.URL != "" }

// PublicHTTPS returns the host:port clients reach the HTTPS proxy at:
// http.pac.proxy_host's host, else host (the name or address a client reached
// the proxy by), with port (the TLS listener's, as it listens: tls.listen may
// say 0); "" without tls.listen.
func (c *Config) PublicHTTPS(host string, port uint16) string {
	if !c.TLS.Enabled() || port == 0 {
		return ""
	}
	if h, _ := c.HTTP.PAC.ProxyHostPort(); h != "" {
		host = h
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// PasswordsInClear reports whether a client on a plaintext listener may send a
// password: not when auth.require_tls is on.
func (c *Config) PasswordsInClear() bool { return !c.Auth.RequireTLS }
