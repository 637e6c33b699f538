package httpproxy

import (
	"encoding/json"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// pac returns the proxy auto-config file for a client that asked for it with
// req: it names the proxy as the client reached it (or as http.pac.proxy_host
// says).
func (c *client) pac(req *Request) []byte {
	return PACFile(c.conn, req.Host)
}

// PACFile returns the proxy auto-config file for the client of conn, which
// asked for it with requestHost (its Host field, or HTTP/2's :authority), with
// the proxies as [PAC] lists them: named as the client reached the proxy (or
// as http.pac.proxy_host says), the plain proxy by its plain port when the
// client came over TLS.
func PACFile(conn *tunnel.Conn, requestHost string) []byte {
	cfg := conn.Policy().Config
	local := tunnel.AddrPortOf(conn.Net().LocalAddr())
	if conn.Secure() {
		local = netip.AddrPortFrom(local.Addr(), conn.Core().ProxyPort())
	}
	return PAC(cfg, pacProxy(cfg, requestHost, local, conn.Secure()), conn.Core().HTTPSPort())
}

// pacProxies is the PAC's answer for the URLs it proxies: "PROXY host:port"; with
// a TLS listener, the HTTPS proxy first ("HTTPS host:tls-port; PROXY
// host:port"), and only it when auth.require_tls refuses passwords in the clear.
// Browsers that cannot speak to an HTTPS proxy skip to the next entry.
func pacProxies(cfg *configs.Config, hostPort string, httpsPort uint16) string {
	plain := "PROXY " + hostPort
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return plain
	}
	https := cfg.PublicHTTPS(host, httpsPort)
	switch {
	case https == "":
		return plain
	case cfg.PasswordsInClear() || cfg.Auth.UsersFile == "" && cfg.Auth.LDAP.URL == "":
		return "HTTPS " + https + "; " + plain
	}
	return "HTTPS " + https
}

// pacProxy is the host:port the PAC file sends clients to: http.pac.proxy_host
// when it names a port; else its host, or the host of requestHost when it is a
// plain name or address, else the address the client connected to (local),
// with requestHost's port (unless the client came over TLS: that port is the
// HTTPS proxy's), else local's.
func pacProxy(cfg *configs.Config, requestHost string, local netip.AddrPort, secure bool) string {
	if !pacVaries(cfg) {
		return cfg.HTTP.PAC.ProxyHost
	}
	host, port := local.Addr().String(), strconv.Itoa(int(local.Port()))
	if h, p, err := net.SplitHostPort(requestHost); err == nil {
		host = h
		if !secure {
			port = p
		}
	} else if requestHost != "" {
		host = requestHost
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		port = strconv.Itoa(int(local.Port()))
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHostName(host) {
		host = local.Addr().String()
	}
	if h, _ := cfg.HTTP.PAC.ProxyHostPort(); h != "" {
		host = h
	}
	return net.JoinHostPort(host, port)
}

// pacVaries reports whether the PAC file depends on the request's Host field:
// unless http.pac.proxy_host names a host and a port, it does, and its answer
// says Vary: Host, so that a cache between clients and the proxy never serves
// the file one client got to another that named the proxy otherwise.
func pacVaries(cfg *configs.Config) bool {
	_, port := cfg.HTTP.PAC.ProxyHostPort()
	return port == ""
}

// PAC returns a proxy auto-config file (a JavaScript FindProxyForURL) that sends
// clients to the proxy at hostPort, which must be a valid host and port (and to
// its HTTPS proxy at httpsPort first, when it has one; see pacProxies): every
// URL, or, when cfg's http.pac.apps names app classes, only URLs whose host is
// one of their domains (or under one) or an address literal in one of their
// networks, and everything else DIRECT. Names are not resolved to match
// networks, so the file costs a browser no DNS lookup per URL; ports, which app
// classes may restrict, are not matched.
func PAC(cfg *configs.Config, hostPort string, httpsPort uint16) []byte {
	proxy := jsString(pacProxies(cfg, hostPort, httpsPort))
	var b strings.Builder
	b.WriteString("// Proxy auto-config of sockshaper, generated from its config.\n")
	if len(cfg.HTTP.PAC.Apps) == 0 {
		b.WriteString("function FindProxyForURL(url, host) {\n  return " + proxy + ";\n}\n")
		return []byte(b.String())
	}
	domains, nets4, nets6 := pacMatches(cfg)
	b.WriteString("// Through the proxy: app classes " + strings.Join(cfg.HTTP.PAC.Apps, ", ") + ". Everything else: DIRECT.\n")
	b.WriteString("var proxy = " + proxy + ";\n")
	b.WriteString("var domains = " + jsValue(domains) + ";\n")
	b.WriteString("var nets4 = " + jsValue(nets4) + ";\n")
	b.WriteString("var nets6 = " + jsValue(nets6) + ";\n")
	b.WriteString(pacMatcher)
	return []byte(b.String())
}

// pacMatcher is the FindProxyForURL of a PAC file that proxies chosen classes.
const pacMatcher = `function FindProxyForURL(url, host) {
  host = host.toLowerCase();
  for (var i = 0; i < domains.length; i++) {
    if (host == domains[i] || dnsDomainIs(host, "." + domains[i])) return proxy;
  }
  if (/^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/.test(host)) {
    for (var j = 0; j < nets4.length; j++) {
      if (isInNet(host, nets4[j][0], nets4[j][1])) return proxy;
    }
  } else if (host.indexOf(":") >= 0 && typeof isInNetEx == "function") {
    var h = host.replace(/^\[|\]$/g, "");
    for (var k = 0; k < nets6.length; k++) {
      if (isInNetEx(h, nets6[k])) return proxy;
    }
  }
  return "DIRECT";
}
`

// pacMatches collects the domains and networks of the classes the PAC proxies:
// IPv4 networks as address and mask, IPv6 ones as CIDRs (for isInNetEx, which
// Chromium and Windows have).
func pacMatches(cfg *configs.Config) (domains []string, nets4 [][2]string, nets6 []string) {
	domains, nets4, nets6 = []string{}, [][2]string{}, []string{}
	for _, class := range cfg.Apps {
		if !slices.Contains(cfg.HTTP.PAC.Apps, class.Name) {
			continue
		}
		domains = append(domains, class.Domains...)
		for _, p := range class.Prefixes {
			if p.Addr().Is4() {
				nets4 = append(nets4, [2]string{p.Addr().String(), mask4(p.Bits())})
			} else {
				nets6 = append(nets6, p.String())
			}
		}
	}
	return domains, nets4, nets6
}

// mask4 writes an IPv4 prefix length as a dotted mask.
func mask4(bits int) string {
	m := ^uint32(0) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

// jsValue writes v as a JavaScript literal (JSON is one, with "<" escaped).
func jsValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings and slices of strings always marshal
	}
	return string(b)
}

func jsString(s string) string { return jsValue(s) }
