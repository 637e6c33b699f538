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
	Cluster  Cluster    `yaml:"cluster"`
	HTTP     HTTP       `yaml:"http"`
	TLS      TLS        `yaml:"tls"`

	// AppsFile is a file of app class rules kept apart from the config, such
	// as the one `sockshaper apps update-m365` writes (see [AppsFile]); a
	// relative path is resolved against the config file's folder. [Load]
	// reads it, and a reload reads it again. Its classes take the place of the
	// domains, networks and ports of the same-named classes of Apps (of the
	// built-in classes when the config has no apps key); classes Apps lacks
	// are added after Apps's. Empty: none.
	AppsFile string `yaml:"apps_file"`
	// AppsSource is the apps file's header, filled by [Load]; nil without an
	// apps file.
	AppsSource *AppsSource `yaml:"-"`

	// StateDir is the folder where state that must survive a restart is kept:
	// the users' quota usage (usage.json). A relative path is resolved against
	// the config file's folder. Empty keeps no state, which validation allows
	// only when no quota is set.
	StateDir string `yaml:"state_dir"`
	// TimeZone is the IANA time zone (such as Europe/Berlin) whose calendar
	// days and months quota periods follow, and of windows that name none.
	TimeZone string `yaml:"time_zone"`
	// Location is TimeZone loaded, filled by validation.
	Location *time.Location `yaml:"-"`

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
	// RequireTLS refuses password logins on plaintext listeners (listen,
	// http.listen): SOCKS5 offers no username/password method there, and HTTP
	// answers 403 naming the HTTPS proxy, so that no password crosses the
	// network in the clear. Logins over tls.listen are unchanged. Off: every
	// listener takes passwords.
	RequireTLS bool `yaml:"require_tls"`
	// LDAP logs users in against a campus directory (OpenLDAP, Active Directory).
	// An empty URL turns it off. With a users file too, the file's users are
	// checked against the file and everyone else against the directory.
	LDAP LDAP `yaml:"ldap"`
	// Kerberos accepts Kerberos tickets (single sign-on); see [Kerberos].
	Kerberos Kerberos `yaml:"kerberos"`
}

// LDAP is the directory login: search the user's entry with a service account,
// then bind as that entry with the client's password; the entry's groups choose
// the shaping group.
type LDAP struct {
	// URL is ldaps://host[:port] (TLS from the start, port 636 by default) or
	// ldap://host[:port] (port 389), which needs StartTLS unless the host is a
	// loopback address. Empty turns the directory off.
	URL string `yaml:"url"`
	// StartTLS upgrades an ldap:// connection to TLS before anything is sent.
	StartTLS bool `yaml:"start_tls"`
	// CAFile is a PEM file of the CA certificates the directory's certificate
	// must chain to. Empty uses the system's roots. A relative path is resolved
	// against the config file's folder.
	CAFile string `yaml:"ca_file"`
	// BindDN is the service account that searches for users' entries.
	BindDN string `yaml:"bind_dn"`
	// BindPasswordFile holds the service account's password (one line; a final
	// newline is ignored), so that the password is never in the config. A
	// relative path is resolved against the config file's folder.
	BindPasswordFile string `yaml:"bind_password_file"`
	// BaseDN is where users' entries are searched, with the whole subtree.
	BaseDN string `yaml:"base_dn"`
	// UserFilter finds a user's entry; {user} stands for the user name, escaped
	// per RFC 4515 so that it cannot change the filter. AD: (sAMAccountName={user}).
	UserFilter string `yaml:"user_filter"`
	// UserNameCase is how the directory compares user names: "fold" (the
	// default: AD's sAMAccountName and OpenLDAP's uid ignore case) or "exact".
	// With fold, a name is lower-cased before it is searched, cached and counted
	// by the throttle, so "Alice" and "alice" are one login; surrounding white
	// space is trimmed in both modes, as the directory ignores it (RFC 4518).
	// Any other spelling the directory matches to the same entry shares its
	// failure count through the entry's DN.
	UserNameCase string `yaml:"user_name_case"`
	// Groups map directory group DNs to shaping groups; the first group in the
	// file's order that the user is a member of picks the shaping group, and a
	// user in none of them gets shaping.default_group.
	Groups LDAPGroups `yaml:"groups"`
	// Timeout bounds each login's requests to the directory together (a new
	// connection, the search and the bind); past it the login is "unavailable".
	Timeout time.Duration `yaml:"timeout"`
	// StaleWindow lets a user whose verified login expired from the cache less
	// than this long ago keep logging in while the directory is unavailable (with
	// the same password). Zero turns it off: no login without an answer.
	StaleWindow time.Duration `yaml:"stale_window"`
}

// LDAPGroups is the ordered mapping of directory group DN to shaping group. In
// YAML it is a mapping, and the mapping's order is kept: the first match wins.
type LDAPGroups []LDAPGroup

// LDAPGroup maps one directory group to a shaping group.
type LDAPGroup struct {
	// DN is the directory group's distinguished name.
	DN string
	// Group is a key of shaping.groups.
	Group string
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
	// OverAllowanceInterval is how often a login may still be checked from an
	// address that has used up FailuresPerAddress: one check per interval, in
	// bursts of up to OverAllowanceBurst, each waiting up to half the handshake
	// timeout for its turn. Only users with no failures of their own from the
	// address are checked; a right password gives its turn back, a wrong one
	// spends it. So the people behind a guessing NAT address still log in, and
	// the guesser is held to one checked guess per interval. Zero refuses every
	// login over the allowance unchecked (except the RememberVerified ones).
	OverAllowanceInterval time.Duration `yaml:"over_allowance_interval"`
	// OverAllowanceBurst is how many checks over the allowance may run at once
	// or in quick succession. At least 1 when OverAllowanceInterval is set.
	OverAllowanceBurst int `yaml:"over_allowance_burst"`
}

// The values of LDAP.UserNameCase.
const (
	NameCaseFold  = "fold"
	NameCaseExact = "exact"
)

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
	// UDPAdvertise is the address UDP ASSOCIATE replies give clients for the relay
	// socket, which is bound to it when it is one of the host's addresses. Behind
	// a TCP load balancer the control connection's local address is not one the
	// client can send datagrams to. Empty: the control connection's local address.
	UDPAdvertise string `yaml:"udp_advertise"`
	// ProxyProtocol accepts the PROXY protocol from load balancers.
	ProxyProtocol ProxyProtocol `yaml:"proxy_protocol"`

	// UDPAdvertiseAddr is UDPAdvertise parsed, filled by validation; the zero Addr
	// when it is empty.
	UDPAdvertiseAddr netip.Addr `yaml:"-"`
	// ClientPrefixes is ClientNetworks parsed, filled by validation.
	ClientPrefixes []netip.Prefix `yaml:"-"`
	// DeniedPrefixes is DenyDestinations expanded and parsed, filled by validation.
	DeniedPrefixes []netip.Prefix `yaml:"-"`
	// DeniedRules names the rule of each of DeniedPrefixes (same index): the
	// named set it came from ("loopback") or the CIDR as parsed
	// ("127.0.0.2/32"), for the log and accounting line of a refusal.
	DeniedRules []string `yaml:"-"`
}

// ProxyProtocol is who may tell the proxy a client's address in a PROXY protocol
// header (HAProxy's send-proxy / send-proxy-v2).
type ProxyProtocol struct {
	// Trusted are the load balancers' CIDRs. A connection from one of them must
	// start with a PROXY header (version 1 or 2), whose source address then stands
	// for the client in every rule, cap, log line and metric; one without a header
	// is refused. A header from any other address is a protocol error. Empty: no
	// PROXY protocol.
	Trusted []string `yaml:"trusted"`

	// TrustedPrefixes is Trusted parsed, filled by validation.
	TrustedPrefixes []netip.Prefix `yaml:"-"`
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

// Limit is an upload/download pair of rates with an optional burst. A group's
// Limit (under shaping.groups) may also carry a quota and limits by time window;
// validation refuses them on the other levels.
type Limit struct {
	Upload   Rate     `yaml:"upload"`
	Download Rate     `yaml:"download"`
	Burst    ByteSize `yaml:"burst"`
	// Quota is the group's volume allowance per user; nil: none.
	Quota *Quota `yaml:"quota"`
	// During replaces some of the rates while a window of Shaping.Windows is
	// open, by window name; see [WindowLimit].
	During map[string]WindowLimit `yaml:"during"`
}

// AppLimits caps one app class: per user, and for all users together.
type AppLimits struct {
	PerUser Limit `yaml:"per_user"`
	Total   Limit `yaml:"total"`
	// During replaces some of the rates while a window of Shaping.Windows is
	// open, by window name.
	During map[string]AppWindow `yaml:"during"`
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
	// Windows are named weekly time windows, in which the During limits of
	// groups and app classes apply.
	Windows map[string]Window `yaml:"windows"`
	// UserQuotas replace the group's quota of the users named; an empty quota
	// exempts a user.
	UserQuotas map[string]Quota `yaml:"user_quotas"`
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
	// DSCP is the Differentiated Services code point the proxy marks the class's
	// packets toward destinations with (IP_TOS, IPV6_TCLASS); 0 leaves them
	// unmarked (best effort). In YAML a number 0-63 or a name such as EF or AF41.
	DSCP DSCP `yaml:"dscp"`
	// DSCPToClient marks the class's packets toward the client with DSCP too.
	DSCPToClient bool `yaml:"dscp_to_client"`

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

// Cluster shares limits among instances behind a load balancer.
type Cluster struct {
	// Redis is the URL of the Redis server the instances share their demand
	// through: redis://host:port/db, or rediss:// for TLS. Empty: this instance
	// shapes alone.
	Redis string `yaml:"redis"`
	// RedisPasswordFile holds the Redis password (never inline: a password in
	// the URL is refused), sent with AUTH, as the URL's user's when it names
	// one (an ACL user) or the default user's (requirepass). Relative to the
	// config file's folder; read at start. Empty: no password.
	RedisPasswordFile string `yaml:"redis_password_file"`
	// Name is this instance's name, unique among the instances, at most 253
	// bytes. Empty: the host name.
	Name string `yaml:"name"`
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
