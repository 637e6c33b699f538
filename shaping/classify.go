// Package shaping owns who and what a session's traffic is and how fast it may go:
// the app classifier (domain suffix, CIDR, port, TLS SNI from the client's first
// bytes), the token buckets of x/time/rate for users, groups, app classes and the
// whole proxy, the limiter registry that shares a user's buckets between their
// sessions and evicts idle users, and the shaped copy that moves a session's bytes
// through those buckets.
//
// Rates are bytes per second and bucket tokens are bytes. shaping knows nothing of
// SOCKS5 or of metrics: the proxy asks it for a class and a [Lease], and reports
// what [Copy] tells its observer.
package shaping

import (
	"net/netip"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/internal/dscp"
)

// Other is the class of every destination no rule matches.
const Other = "other"

// tlsPort is where SNI is worth reading for classes that do not restrict ports:
// TLS on other ports is rare, and on server-speaks-first protocols (SMTP, SSH) the
// proxy would wait for client bytes that never come before the server's greeting.
const tlsPort = 443

// Target is what the classifier knows about a destination. The zero value is a
// destination nothing but [Other] matches.
type Target struct {
	// Transport is "tcp" or "udp".
	Transport string
	// Host is the name the client asked for; "" when the request held an IP.
	Host string
	// Addr is the address dialled or sent to; the zero Addr when unknown.
	Addr netip.Addr
	// Port is the destination port.
	Port uint16
	// SNI is the TLS server name from the client's first bytes, "" if none.
	SNI string
}

// Classifier maps a [Target] to an app class name with the first matching rule of
// an ordered list. It is immutable once built and safe for concurrent use; a
// reload builds a new one. The zero Classifier classifies everything as [Other].
type Classifier struct {
	classes []class
	names   []string // class names in order, then Other
}

// class is one rule of the list, normalised for allocation-free matching.
type class struct {
	name     string
	domains  []string // lowercase, no leading or trailing dot
	prefixes []netip.Prefix
	ports    []configs.PortRange // restrict domains and prefixes; empty: any port
	anyPorts []configs.PortRange // match on port and transport alone
	mark     dscp.Mark           // toward destinations
	toClient dscp.Mark           // toward the client; zero unless dscp_to_client
}

// NewClassifier builds a Classifier from validated app classes: their Prefixes
// must already be parsed from Networks (configs validation does it). Domains are
// normalised again (lowercase, leading and trailing dots dropped) so that classes
// built by hand behave like loaded ones.
func NewClassifier(classes configs.AppClasses) *Classifier {
	c := &Classifier{classes: make([]class, 0, len(classes))}
	for _, ac := range classes {
		cl := class{name: ac.Name, ports: ac.Ports, anyPorts: ac.AnyAddressPorts, mark: dscp.New(ac.DSCP)}
		if ac.DSCPToClient {
			cl.toClient = cl.mark
		}
		for _, d := range ac.Domains {
			if d = normalizeDomain(d); d != "" {
				cl.domains = append(cl.domains, d)
			}
		}
		for _, p := range ac.Prefixes {
			cl.prefixes = append(cl.prefixes, normalizePrefix(p))
		}
		c.classes = append(c.classes, cl)
		c.names = append(c.names, ac.Name)
	}
	c.names = append(c.names, Other)
	return c
}

// Classify returns the name of the first class that matches t, else [Other]. A
// class matches when one of its AnyAddressPorts admits t's transport and port, or
// when t's Host or SNI is one of its domains or a subdomain of one, or t's Addr is
// in one of its networks, and its Ports (if any) admit t's transport and port.
// Classify does not allocate.
func (c *Classifier) Classify(t Target) string {
	if i := c.match(t); i >= 0 {
		return c.classes[i].name
	}
	return Other
}

// match returns the index of the first class matching t, or -1.
func (c *Classifier) match(t Target) int {
	// Unmapped, so an IPv4 rule matches ::ffff:a.b.c.d; unzoned, because
	// Prefix.Contains never matches a zoned address and a zone names an
	// interface, not a different host.
	addr := t.Addr.Unmap().WithZone("")
	for i := range c.classes {
		cl := &c.classes[i]
		if portsAdmit(cl.anyPorts, t.Transport, t.Port) {
			return i
		}
		if len(cl.ports) > 0 && !portsAdmit(cl.ports, t.Transport, t.Port) {
			continue
		}
		if cl.matchName(t.Host) || cl.matchName(t.SNI) || cl.matchAddr(addr) {
			return i
		}
	}
	return -1
}

// Names returns the class names in rule order followed by [Other]: every value
// Classify can return. The slice is the caller's to keep.
func (c *Classifier) Names() []string {
	if c.names == nil {
		return []string{Other}
	}
	return append([]string(nil), c.names...)
}

// WantsSNI reports whether reading the TLS server name from the client's first
// bytes could change what Classify returns for t: t is TCP to an address rather
// than a name, and a class ahead of the one t matches now has domains that apply
// on t's port (443 when the class restricts no ports). The caller must bound the
// time it waits for those bytes: on a server-speaks-first protocol they never come.
func (c *Classifier) WantsSNI(t Target) bool {
	if t.Transport != "tcp" || t.Host != "" {
		return false
	}
	t.SNI = ""
	end := c.match(t)
	if end < 0 {
		end = len(c.classes)
	}
	for i := range end {
		cl := &c.classes[i]
		if len(cl.domains) == 0 {
			continue
		}
		if (len(cl.ports) == 0 && t.Port == tlsPort) || portsAdmit(cl.ports, t.Transport, t.Port) {
			return true
		}
	}
	return false
}

// matchName reports whether name, compared without regard to ASCII case and to
// one trailing dot, is one of cl's domains or ends in "." followed by one: the
// suffix must start on a label boundary, so notskype.com is not skype.com.
func (cl *class) matchName(name string) bool {
	if name == "" || len(cl.domains) == 0 {
		return false
	}
	if name[len(name)-1] == '.' {
		name = name[:len(name)-1]
	}
	for _, d := range cl.domains {
		switch {
		case len(name) == len(d):
			if equalFoldASCII(name, d) {
				return true
			}
		case len(name) > len(d):
			cut := len(name) - len(d)
			if name[cut-1] == '.' && equalFoldASCII(name[cut:], d) {
				return true
			}
		}
	}
	return false
}

// matchAddr reports whether addr (already unmapped) is in one of cl's networks.
func (cl *class) matchAddr(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	for _, p := range cl.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// portsAdmit reports whether one of ranges admits port on transport; a range
// without a transport admits both.
func portsAdmit(ranges []configs.PortRange, transport string, port uint16) bool {
	for _, r := range ranges {
		if (r.Transport == "" || r.Transport == transport) && r.First <= port && port <= r.Last {
			return true
		}
	}
	return false
}

// equalFoldASCII reports whether s equals lower, a lowercase string, when ASCII
// letters of s are folded to lower case. Unlike strings.EqualFold it folds nothing
// outside ASCII: DNS names compare case-insensitively in ASCII only (RFC 4343).
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// normalizeDomain lowercases d (ASCII only, as matching does) and drops leading
// and trailing dots, so ".Skype.com." and "skype.com" are the same rule.
func normalizeDomain(d string) string {
	for len(d) > 0 && d[0] == '.' {
		d = d[1:]
	}
	for len(d) > 0 && d[len(d)-1] == '.' {
		d = d[:len(d)-1]
	}
	b := []byte(d)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// normalizePrefix masks p and turns an IPv4-mapped IPv6 prefix into the IPv4 one,
// because Classify unmaps addresses before it looks them up.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}
