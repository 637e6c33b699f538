package httpproxy

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// form is the kind of request-target (RFC 9112 section 3.2).
type form int

const (
	originForm    form = iota // /path?query: a request to the proxy itself
	absoluteForm              // http://host[:port]/path?query: forward it
	authorityForm             // host:port: CONNECT
)

// destination is where a proxied request goes.
type destination struct {
	target    tunnel.Target
	authority string // host[:port] as the client wrote it, for the Host field
	path      string // origin-form path and query to send the origin
}

// hostPort formats the destination for logs and the accounting line.
func (d destination) hostPort() string {
	host := d.target.Host
	if host == "" {
		host = d.target.Addr.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(d.target.Port)))
}

// parseTarget reads a request's target by its method: authority-form for
// CONNECT, absolute-form (http only) or origin-form for the rest. The asterisk
// form, other schemes, user info in a URI, fragments and host names that are
// not letters, digits, "-", "_" and "." are refused.
func parseTarget(method, target string) (form, destination, error) {
	if method == "CONNECT" {
		d, err := parseAuthority(target, false)
		return authorityForm, d, err
	}
	if strings.HasPrefix(target, "/") {
		if strings.Contains(target, "#") {
			return 0, destination{}, badRequest("fragment in request target")
		}
		return originForm, destination{path: target}, nil
	}
	scheme, rest, ok := strings.Cut(target, "://")
	if !ok {
		return 0, destination{}, badRequest("request target is neither a path nor an absolute URI")
	}
	if !strings.EqualFold(scheme, "http") {
		return 0, destination{}, badRequest("only http:// URIs are forwarded; use CONNECT for %s", strings.ToLower(scheme))
	}
	i := strings.IndexAny(rest, "/?#")
	if i < 0 {
		i = len(rest)
	}
	d, err := parseAuthority(rest[:i], true)
	if err != nil {
		return 0, destination{}, err
	}
	d.path = rest[i:]
	switch {
	case strings.Contains(d.path, "#"):
		return 0, destination{}, badRequest("fragment in request target")
	case d.path == "":
		d.path = "/"
	case d.path[0] == '?':
		d.path = "/" + d.path
	}
	return absoluteForm, d, nil
}

// parseAuthority reads host[:port]; the port is required for CONNECT and
// defaults to 80 in a URI.
func parseAuthority(a string, defaultPort bool) (destination, error) {
	if strings.Contains(a, "@") {
		return destination{}, badRequest("user info in request target")
	}
	host, port := a, "80"
	if h, p, err := net.SplitHostPort(a); err == nil {
		host, port = h, p
	} else if !defaultPort || strings.Contains(a, ":") && !(strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]")) {
		return destination{}, badRequest("request target %q is not host:port", a)
	}
	bracketed := strings.HasPrefix(a, "[")
	if bracketed {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || port[0] == '+' {
		return destination{}, badRequest("port %q is not a number from 1 to 65535", port)
	}
	d := destination{authority: a, target: tunnel.Target{Port: uint16(n)}}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" && ip.Is6() == bracketed {
		d.target.Addr = ip.Unmap()
		return d, nil
	}
	if bracketed || !validHostName(host) {
		return destination{}, badRequest("host %q is not a valid name or address", host)
	}
	d.target.Host = strings.ToLower(strings.TrimSuffix(host, "."))
	return d, nil
}

// validHostName reports whether s is a DNS name of letters, digits, "-", "_"
// and "." with no empty label, at most 253 characters.
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
