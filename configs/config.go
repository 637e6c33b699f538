// Package configs owns sockshaper's configuration: the schema as Go types, the
// defaults, YAML parsing with unknown keys rejected, validation with errors that name
// the file, line, field and problem, and the embedded default config the daemon runs
// on when it is given no file.
package configs

import (
	"net/netip"
	"time"
)

// Config is one complete, validated sockshaper configuration. A Config returned by
// [Load], [Parse] or [Default] is never modified afterwards; a reload builds a new one.
type Config struct {
	// Listen is the SOCKS5 listen address, host:port.
	Listen string `yaml:"listen"`
	// AdminListen is the address of the admin HTTP server (/metrics, /healthz,
	// /readyz). Empty disables it.
	AdminListen string `yaml:"admin_listen"`

	Auth     Auth       `yaml:"auth"`
	Access   Access     `yaml:"access"`
	Timeouts Timeouts   `yaml:"timeouts"`
	Limits   Limits     `yaml:"limits"`
	Shaping  Shaping    `yaml:"shaping"`
	Apps     AppClasses `yaml:"apps"`
	Metrics  Metrics    `yaml:"metrics"`
	HTTP     HTTP       `yaml:"http"`

	// Source names where the config came from: the file's path, or
	// "embedded default". Errors and logs use it.
	Source string `yaml:"-"`
}

// Auth selects how clients authenticate.
type Auth struct {
	// UsersFile is an htpasswd file of bcrypt lines (htpasswd -B, or
	// `sockshaper passwd`). A relative path is resolved against the config file's
	// folder. Empty means no authentication, which validation allows only when every
	// client network is loopback.
	UsersFile string `yaml:"users_file"`
	// CacheTTL is how long a verified user/password pair is remembered so that a
	// returning client does not pay for bcrypt again. Zero disables the cache.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// Throttle bounds password guessing.
	Throttle AuthThrottle `yaml:"throttle"`
}

// AuthThrottle is the allowance of failed logins. Failures are counted per client
// address (an IPv6 client's /64) and user, and per client address, in windows that
// start at the first failure; a login over either allowance is refused without a
// check. Logins that could not be checked (queue full, directory unavailable, client
// gone before the answer) are not failures.
type AuthThrottle struct {
	// FailuresPerUser is how many failed logins of one user from one address a
	// window allows. At least 1.
	FailuresPerUser int `yaml:"failures_per_user"`
	// FailuresPerAddress is how many failed logins of any users from one address a
	// window allows, so that one address cannot guess many accounts. Higher than
	// FailuresPerUser, since one NAT address can hold a whole lab; at least
	// FailuresPerUser.
	FailuresPerAddress int `yaml:"failures_per_address"`
	// Window is how long failures are remembered, from the first. Greater than 0.
	Window time.Duration `yaml:"window"`
	// RememberVerified exempts a user who logged in from an address within this
	// long from that address's FailuresPerAddress (never from FailuresPerUser), so
	// that guessing behind a NAT address does not lock out the people who use it.
	// Zero turns the exemption off.
	RememberVerified time.Duration `yaml:"remember_verified"`
}

// Access is the policy: who may use the proxy, for what, to where.
type Access struct {
	// ClientNetworks are the CIDRs clients may connect from; anything else is closed
	// before a byte is read.
	ClientNetworks []string `yaml:"client_networks"`
	// DenyDestinations are named sets (loopback, private, link-local, metadata,
	// multicast, broadcast) and CIDRs that no CONNECT or UDP datagram may reach,
	// checked after DNS resolution.
	DenyDestinations []string `yaml:"deny_destinations"`
	// Bind allows the SOCKS5 BIND command. It is the inbound path that makes a client
	// a Skype supernode, so it is off unless an operator insists.
	Bind bool `yaml:"bind"`
	// UDPAssociate allows the UDP ASSOCIATE command.
	UDPAssociate bool `yaml:"udp_associate"`

	// ClientPrefixes is ClientNetworks parsed, filled by validation.
	ClientPrefixes []netip.Prefix `yaml:"-"`
	// DeniedPrefixes is DenyDestinations expanded and parsed, filled by validation.
	DeniedPrefixes []netip.Prefix `yaml:"-"`
}

// Timeouts bound every wait. Zero is not allowed for any of them.
type Timeouts struct {
	// Handshake bounds greeting, authentication and request together.
	Handshake time.Duration `yaml:"handshake"`
	// Dial bounds resolving and connecting to a destination.
	Dial time.Duration `yaml:"dial"`
	// Idle closes a session after no byte moved in either direction for this long.
	Idle time.Duration `yaml:"idle"`
	// Drain is how long sessions may continue after SIGTERM before they are closed.
	Drain time.Duration `yaml:"drain"`
}

// Limits caps concurrent connections. A connection counts as a handshake from accept
// until its SOCKS request is read, then as a session. Per-client caps count an IPv6
// client by its /64. For the fields where zero means "derive", the proxy derives the
// value from the descriptor limit (RLIMIT_NOFILE) at start, so that handshakes can
// never take the descriptors that established sessions need.
type Limits struct {
	// MaxSessions caps established sessions; 0 derives it.
	MaxSessions int `yaml:"max_sessions"`
	// MaxSessionsPerClientIP caps established sessions per client address; at least 1.
	MaxSessionsPerClientIP int `yaml:"max_sessions_per_client_ip"`
	// MaxSessionsPerUser caps established sessions per user; at least 1.
	MaxSessionsPerUser int `yaml:"max_sessions_per_user"`
	// MaxHandshakes caps connections still in their handshake; 0 derives it.
	MaxHandshakes int `yaml:"max_handshakes"`
	// MaxHandshakesPerClientIP caps handshakes per client address; 0 derives it.
	MaxHandshakesPerClientIP int `yaml:"max_handshakes_per_client_ip"`
}

// Rate is a transfer rate in bytes per second. Zero means unlimited. In YAML it is
// written with a unit: "8Mbit", "512kbit", "1MiB", "2MB", "1Gbit" (bit units are
// per second and decimal; byte units are bytes per second) or a bare number of
// bytes per second.
type Rate int64

// ByteSize is a size in bytes, written in YAML as "256KiB", "1MiB", "64kB" or a bare
// number of bytes. Zero means "use the default".
type ByteSize int64

// Limit is an upload/download pair of rates with an optional burst.
type Limit struct {
	Upload   Rate     `yaml:"upload"`
	Download Rate     `yaml:"download"`
	Burst    ByteSize `yaml:"burst"`
}

// AppLimits caps one app class: per user, and for all users together.
type AppLimits struct {
	PerUser Limit `yaml:"per_user"`
	Total   Limit `yaml:"total"`
}

// Shaping holds every token-bucket limit.
type Shaping struct {
	// DefaultGroup is the group of users not listed in Members. It must name a key
	// of Groups when Groups is not empty.
	DefaultGroup string `yaml:"default_group"`
	// Groups are per-user limits by group name: each user of a group gets buckets of
	// these rates of their own.
	Groups map[string]Limit `yaml:"groups"`
	// Members maps a user name to a group name.
	Members map[string]string `yaml:"members"`
	// Apps caps app classes by name (a class defined under the top-level apps key).
	Apps map[string]AppLimits `yaml:"apps"`
	// Global caps all traffic of the proxy together.
	Global Limit `yaml:"global"`
	// IdleEviction drops a user's buckets after they had no session for this long.
	IdleEviction time.Duration `yaml:"idle_eviction"`
}

// AppClasses is the ordered list of app classification rules; the first class that
// matches a destination wins. In YAML it is a mapping from class name to rule, and the
// mapping's order is kept.
type AppClasses []AppClass

// AppClass is the rule for one app class.
type AppClass struct {
	// Name is the class name, used as the app label and as the key in Shaping.Apps.
	Name string `yaml:"-"`
	// Domains match a requested name or TLS SNI by suffix on a label boundary.
	Domains []string `yaml:"domains"`
	// Networks match a destination address by CIDR.
	Networks []string `yaml:"networks"`
	// Ports, when not empty, restrict Domains and Networks matches to these ports.
	Ports []PortRange `yaml:"ports"`
	// AnyAddressPorts classify on the port alone, whatever the address.
	AnyAddressPorts []PortRange `yaml:"any_address_ports"`

	// Prefixes is Networks parsed, filled by validation.
	Prefixes []netip.Prefix `yaml:"-"`
}

// PortRange is a port or range with an optional transport, written in YAML as "443",
// "tcp/443", "udp/3478-3481".
type PortRange struct {
	// Transport is "tcp", "udp" or "" for both.
	Transport string
	First     uint16
	Last      uint16
}

// Metrics controls what the admin endpoint exports.
type Metrics struct {
	// PerUser exports sockshaper_user_transferred_bytes_total by user.
	PerUser bool `yaml:"per_user"`
	// PerUserMaxUsers caps the users exported per-user; bytes of further users are
	// not exported by user and are counted as dropped.
	PerUserMaxUsers int `yaml:"per_user_max_users"`
	// Pprof serves /debug/pprof on the admin listener.
	Pprof bool `yaml:"pprof"`
}
