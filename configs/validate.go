package configs

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks every field of a config built in Go, such as [Defaults] changed by a
// test, and fills the fields that validation derives (Access.ClientPrefixes,
// Access.DeniedPrefixes, AppClass.Prefixes) and normalizes AppClass.Domains. It
// returns every problem as a *[FieldError] without a line, joined with
// [errors.Join]. [Load], [Parse] and [Default] have already validated what they
// return. Validate writes to c, so c must not be in use by others.
func (c *Config) Validate() error {
	errs := validate(c, &document{file: c.Source})
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

// validator collects problems instead of stopping at the first, so that an operator
// fixes a config in one pass.
type validator struct {
	doc  *document
	errs []error
}

func validate(c *Config, doc *document) []error {
	v := &validator{doc: doc}
	v.hostPort(path("listen"), c.Listen, false)
	v.hostPort(path("admin_listen"), c.AdminListen, true)
	if c.AdminListen != "" && c.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		v.add(path("admin_listen"), nil, "must differ from listen")
	}
	v.access(&c.Access)
	v.auth(c)
	v.positive(path("timeouts", "handshake"), c.Timeouts.Handshake)
	v.positive(path("timeouts", "dial"), c.Timeouts.Dial)
	v.positive(path("timeouts", "idle"), c.Timeouts.Idle)
	v.positive(path("timeouts", "drain"), c.Timeouts.Drain)
	v.notNegative(path("limits", "max_sessions"), c.Limits.MaxSessions)
	v.atLeastOne(path("limits", "max_sessions_per_client_ip"), c.Limits.MaxSessionsPerClientIP)
	v.atLeastOne(path("limits", "max_sessions_per_user"), c.Limits.MaxSessionsPerUser)
	v.notNegative(path("limits", "max_handshakes"), c.Limits.MaxHandshakes)
	v.notNegative(path("limits", "max_handshakes_per_client_ip"), c.Limits.MaxHandshakesPerClientIP)
	v.shaping(&c.Shaping, c.Apps)
	v.cluster(&c.Cluster)
	v.apps(c.Apps)
	v.usage(c)
	v.http(c)
	v.tls(c)
	if c.Metrics.PerUserMaxUsers < 0 || c.Metrics.PerUser && c.Metrics.PerUserMaxUsers < 1 {
		v.add(path("metrics", "per_user_max_users"), nil, "must be at least 1 when metrics.per_user is on")
	}
	sortByLine(v.errs)
	return v.errs
}

func (v *validator) add(p fieldPath, err error, problem string) {
	v.errs = append(v.errs, &FieldError{
		File: v.doc.file, Line: v.doc.line(p), Field: p.String(), Problem: problem, Err: err,
	})
}

func (v *validator) hostPort(p fieldPath, addr string, optional bool) {
	if addr == "" && optional {
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(p, err, fmt.Sprintf("%q is not host:port, such as 127.0.0.1:1080 or [::1]:1080", addr))
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.add(p, err, fmt.Sprintf("port %q is not a number from 0 to 65535", port))
	}
}

func (v *validator) positive(p fieldPath, d time.Duration) {
	if d <= 0 {
		v.add(p, nil, "must be greater than 0")
	}
}

func (v *validator) atLeastOne(p fieldPath, n int) {
	if n < 1 {
		v.add(p, nil, "must be at least 1")
	}
}

// notNegative checks a count where 0 means "derive from the descriptor limit".
func (v *validator) notNegative(p fieldPath, n int) {
	if n < 0 {
		v.add(p, nil, "must not be negative (0 derives it from the descriptor limit)")
	}
}

func (v *validator) access(a *Access) {
	v.balancers(a)
	if len(a.ClientNetworks) == 0 {
		v.add(path("access", "client_networks"), nil, "is empty, so no client could connect")
	}
	a.ClientPrefixes = nil
	for i, s := range a.ClientNetworks {
		if p, err := parsePrefix(s); err != nil {
			v.add(path("access", "client_networks").index(i), err, netipProblem(s, err))
		} else {
			a.ClientPrefixes = append(a.ClientPrefixes, p)
		}
	}
	a.DeniedPrefixes, a.DeniedRules = nil, nil
	sets := NamedDestinationSets()
	for i, s := range a.DenyDestinations {
		if set, ok := sets[s]; ok {
			a.DeniedPrefixes = append(a.DeniedPrefixes, set...)
			for range set {
				a.DeniedRules = append(a.DeniedRules, s)
			}
			continue
		}
		p, err := parsePrefix(s)
		switch {
		case err == nil:
			a.DeniedPrefixes = append(a.DeniedPrefixes, p)
			a.DeniedRules = append(a.DeniedRules, p.String())
		case strings.Trim(s, "abcdefghijklmnopqrstuvwxyz-") == "":
			v.add(path("access", "deny_destinations").index(i), nil, fmt.Sprintf(
				"unknown named set %q; the named sets are %s, or write a CIDR",
				s, strings.Join(slices.Sorted(maps.Keys(sets)), ", ")))
		default:
			v.add(path("access", "deny_destinations").index(i), err, netipProblem(s, err))
		}
	}
}

// cluster checks the Redis URL's scheme and fills in the instance name.
func (v *validator) cluster(c *Cluster) {
	if c.Redis == "" {
		return
	}
	u, err := url.Parse(c.Redis)
	switch {
	case err != nil:
		v.add(path("cluster", "redis"), err, fmt.Sprintf("%q is not a URL such as redis://10.0.0.20:6379/0", c.Redis))
		return
	case u.Scheme != "redis" && u.Scheme != "rediss":
		v.add(path("cluster", "redis"), nil, fmt.Sprintf("scheme %q: want redis:// or rediss:// (TLS)", u.Scheme))
	case u.User != nil:
		if _, set := u.User.Password(); set {
			v.add(path("cluster", "redis"), nil, "holds a password: put it in cluster.redis_password_file instead")
		}
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	switch {
	case c.Name == "":
		v.add(path("cluster", "name"), nil, "is empty and the host name could not be read; name this instance")
	case len(c.Name) > maxClusterName:
		v.add(path("cluster", "name"), nil, fmt.Sprintf("is %d bytes; at most %d (a host name's length)", len(c.Name), maxClusterName))
	}
}

// maxClusterName bounds cluster.name: the other instances ignore a member with
// a longer name (cluster.MaxNameLen, which a test holds to this).
const maxClusterName = 253

// balancers parses the PROXY protocol's trusted networks and the UDP address to
// advertise.
func (v *validator) balancers(a *Access) {
	a.ProxyProtocol.TrustedPrefixes = nil
	for i, s := range a.ProxyProtocol.Trusted {
		if p, err := parsePrefix(s); err != nil {
			v.add(path("access", "proxy_protocol", "trusted").index(i), err, netipProblem(s, err))
		} else {
			a.ProxyProtocol.TrustedPrefixes = append(a.ProxyProtocol.TrustedPrefixes, p)
		}
	}
	a.UDPAdvertiseAddr = netip.Addr{}
	if a.UDPAdvertise == "" {
		return
	}
	addr, err := netip.ParseAddr(a.UDPAdvertise)
	switch {
	case err != nil:
		v.add(path("access", "udp_advertise"), err, fmt.Sprintf("%q is not an IP address", a.UDPAdvertise))
	case addr.IsUnspecified() || addr.Zone() != "":
		v.add(path("access", "udp_advertise"), nil, "must be an address clients can send to, not unspecified or zoned")
	default:
		a.UDPAdvertiseAddr = addr.Unmap()
	}
}

// auth refuses to run an open proxy: without a users file or a directory, anyone who
// can reach the listener could use it, so only the local host may.
func (v *validator) auth(c *Config) {
	if c.Auth.CacheTTL < 0 {
		v.add(path("auth", "cache_ttl"), nil, "must not be negative (0 disables the cache)")
	}
	v.throttle(c.Auth.Throttle)
	v.ldap(&c.Auth.LDAP, c.Shaping.Groups)
	v.kerberos(&c.Auth.Kerberos, c.Auth.LDAP.URL)
	if c.Auth.LDAP.StaleWindow > 0 && c.Auth.CacheTTL == 0 {
		v.add(path("auth", "ldap", "stale_window"), nil,
			"needs auth.cache_ttl above 0: only a cached login can outlast an outage")
	}
	if c.Auth.UsersFile != "" || c.Auth.LDAP.URL != "" || c.Auth.Kerberos.KeytabFile != "" {
		return
	}
	for _, p := range c.Access.ClientPrefixes {
		if !isLoopback(p) {
			v.add(path("auth", "users_file"), nil, "empty means no authentication, which is allowed only "+
				"when every access.client_networks entry is loopback; set a users file, auth.ldap or auth.kerberos, or restrict client_networks")
			return
		}
	}
}

func (v *validator) throttle(t AuthThrottle) {
	v.atLeastOne(path("auth", "throttle", "failures_per_user"), t.FailuresPerUser)
	switch p := path("auth", "throttle", "failures_per_address"); {
	case t.FailuresPerAddress < 1:
		v.atLeastOne(p, t.FailuresPerAddress)
	case t.FailuresPerAddress < t.FailuresPerUser:
		v.add(p, nil, fmt.Sprintf("must be at least failures_per_user (%d): one address can hold many users", t.FailuresPerUser))
	}
	v.positive(path("auth", "throttle", "window"), t.Window)
	if t.RememberVerified < 0 {
		v.add(path("auth", "throttle", "remember_verified"), nil, "must not be negative (0 turns the exemption off)")
	}
	switch {
	case t.OverAllowanceInterval < 0:
		v.add(path("auth", "throttle", "over_allowance_interval"), nil,
			"must not be negative (0 refuses every login over the address's allowance)")
	case t.OverAllowanceInterval > 0 && t.OverAllowanceBurst < 1:
		v.add(path("auth", "throttle", "over_allowance_burst"), nil, "must be at least 1 with over_allowance_interval set")
	}
}

// parsePrefix reads a CIDR, or a bare address as a one-address prefix. It masks the
// host bits and unmaps IPv4-mapped IPv6 prefixes, so that they match the unmapped
// addresses the proxy compares them with.
func parsePrefix(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("ParseAddr(%q): IPv6 zones cannot be used here", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// netipProblem states a net/netip parse error without the Go function names that
// net/netip puts in front of the reason.
func netipProblem(s string, err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "): "); i >= 0 {
		msg = msg[i+3:]
	}
	return fmt.Sprintf("%q is not a CIDR or IP address: %s", s, msg)
}

// isLoopback reports whether every address of p is a loopback address.
func isLoopback(p netip.Prefix) bool {
	if p.Addr().Is4() {
		return p.Bits() >= 8 && p.Addr().IsLoopback()
	}
	return p.Bits() == 128 && p.Addr().IsLoopback()
}
