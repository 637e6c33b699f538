package configs

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HTTP configures the HTTP proxy front: HTTP proxy clients (browsers, system proxy
// settings, Teams) are served on the listen address beside SOCKS5 clients, told
// apart by their first byte, and on HTTP.Listen when it is set.
type HTTP struct {
	// Listen is an optional second address, host:port, that serves HTTP proxy
	// clients only. Empty: none; HTTP clients use the listen address.
	Listen string `yaml:"listen"`
	// Realm is the realm of the Proxy-Authenticate challenge, which browsers show
	// in their login prompt. Letters, digits, spaces and ".-_:/"; not empty.
	Realm string `yaml:"realm"`
	// ConnectPorts, when not empty, are the only destination ports HTTP clients
	// may reach ("443", "8000-8999"), by CONNECT and by forwarded requests alike
	// (an absolute URI's port, 80 when it names none); other ports get 403.
	// Empty: every port the destination policy allows.
	ConnectPorts []PortRange `yaml:"connect_ports"`
	// ForwardedFor adds X-Forwarded-For with the client's address to forwarded
	// requests. Off: origins never learn client addresses from the proxy.
	ForwardedFor bool `yaml:"forwarded_for"`
	// KeepAlive is how long a client connection may wait between two requests
	// before the proxy closes it. Greater than 0.
	KeepAlive time.Duration `yaml:"keepalive"`
	// PAC shapes the proxy auto-config file served at /proxy.pac and /wpad.dat.
	PAC PAC `yaml:"pac"`
}

// PAC shapes the proxy auto-config file.
type PAC struct {
	// ProxyHost is the host name or address the file tells clients to send their
	// traffic to, with a port ("proxy.campus.example:3128") or without one (then
	// the port they fetched the file from). Empty: the host they fetched it from
	// (their Host header, else the address they connected to). With a port, the
	// file is the same for every client and caches may share it; otherwise it is
	// served with Vary: Host.
	ProxyHost string `yaml:"proxy_host"`
	// Apps, when not empty, are the app classes (names under the top-level apps
	// key) whose domains and networks go through the proxy; everything else goes
	// DIRECT. Empty: everything goes through the proxy.
	Apps []string `yaml:"apps"`
}

// httpDefaults returns the HTTP front's defaults.
func httpDefaults() HTTP {
	return HTTP{Realm: "sockshaper", KeepAlive: time.Minute}
}

// http checks the HTTP front's settings.
func (v *validator) http(c *Config) {
	h := &c.HTTP
	v.hostPort(path("http", "listen"), h.Listen, true)
	if h.Listen != "" && (h.Listen == c.Listen || h.Listen == c.AdminListen) && !strings.HasSuffix(h.Listen, ":0") {
		v.add(path("http", "listen"), nil, "must differ from listen and admin_listen")
	}
	if h.Realm == "" || strings.Trim(h.Realm, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-_:/") != "" {
		v.add(path("http", "realm"), nil, `must be letters, digits, spaces and ".-_:/", not empty`)
	}
	for i, pr := range h.ConnectPorts {
		if pr.Transport == "udp" {
			v.add(path("http", "connect_ports").index(i), nil, fmt.Sprintf("%q: CONNECT is TCP; write the port without udp/", pr.String()))
		}
	}
	v.positive(path("http", "keepalive"), h.KeepAlive)
	if host, port := h.PAC.ProxyHostPort(); strings.ContainsAny(host, " \t\"';:/[]") && !isIPv6(host) {
		v.add(path("http", "pac", "proxy_host"), nil, fmt.Sprintf("%q is not a host name or address, with an optional :port", h.PAC.ProxyHost))
	} else if n, err := strconv.Atoi(port); port != "" && (err != nil || n < 1 || n > 65535) {
		v.add(path("http", "pac", "proxy_host"), nil, fmt.Sprintf("%q: port %q is not in 1-65535", h.PAC.ProxyHost, port))
	}
	names := make([]string, len(c.Apps))
	for i, a := range c.Apps {
		names[i] = a.Name
	}
	for i, app := range h.PAC.Apps {
		if !slices.Contains(names, app) {
			v.add(path("http", "pac", "apps").index(i), nil, fmt.Sprintf(
				"app class %q is not defined under the top-level apps key (defined: %s)", app, strings.Join(names, ", ")))
		}
	}
}

// ProxyHostPort splits ProxyHost into its host and its port, "" when it names
// none (a bare IPv6 address names none).
func (p *PAC) ProxyHostPort() (host, port string) {
	if h, port, err := net.SplitHostPort(p.ProxyHost); err == nil {
		return h, port
	}
	return p.ProxyHost, ""
}

// isIPv6 reports whether s is a bare IPv6 address, which a PAC names in brackets.
func isIPv6(s string) bool {
	p, err := parsePrefix(s)
	return err == nil && p.Addr().Is6() && p.IsSingleIP()
}

// ConnectPortAllowed reports whether an HTTP client may reach port under h, by
// CONNECT or by a forwarded request.
func (h *HTTP) ConnectPortAllowed(port uint16) bool {
	if len(h.ConnectPorts) == 0 {
		return true
	}
	for _, pr := range h.ConnectPorts {
		if pr.Contains("tcp", port) {
			return true
		}
	}
	return false
}
