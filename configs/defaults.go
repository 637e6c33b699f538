package configs

import (
	_ "embed"
	"net/netip"
	"time"
)

// defaultYAML is a string rather than a []byte so that it cannot be changed.
//
//go:embed default.yaml
var defaultYAML string

// DefaultYAML returns the embedded default config file, so that an operator can start
// from the file sockshaper runs on when it is given none.
func DefaultYAML() []byte { return []byte(defaultYAML) }

// Default returns the embedded default config (default.yaml), parsed and validated,
// with Source "embedded default". It only fails if the embedded file is broken, which
// the package's tests rule out.
func Default() (*Config, error) {
	cfg, err := Parse([]byte(defaultYAML), "embedded default")
	if err != nil {
		return nil, err
	}
	if err := resolvePaths(cfg, ""); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Defaults returns the value of every field that a config file does not set. It is
// what [Parse] decodes a file onto; it is not validated, so the fields that
// validation fills (Access.ClientPrefixes, Access.DeniedPrefixes, AppClass.Prefixes)
// are empty until [Config.Validate] is called. Each call returns new slices.
func Defaults() Config {
	return Config{
		Listen:      "127.0.0.1:1080",
		AdminListen: "127.0.0.1:9180",
		Auth: Auth{CacheTTL: time.Minute, Throttle: AuthThrottle{
			FailuresPerUser: 10, FailuresPerAddress: 100, Window: time.Minute, RememberVerified: 24 * time.Hour,
			OverAllowanceInterval: time.Second, OverAllowanceBurst: 3,
		}, LDAP: LDAP{UserFilter: "(uid={user})", UserNameCase: NameCaseFold, Timeout: 5 * time.Second}, Kerberos: kerberosDefaults()},
		Access: Access{
			ClientNetworks:   []string{"127.0.0.0/8", "::1/128"},
			DenyDestinations: []string{"loopback", "private", "link-local", "metadata", "multicast", "broadcast"},
			UDPAssociate:     true,
		},
		Timeouts: Timeouts{
			Handshake: 10 * time.Second,
			Dial:      10 * time.Second,
			Idle:      5 * time.Minute,
			Drain:     30 * time.Second,
		},
		Limits:   Limits{MaxSessionsPerClientIP: 512, MaxSessionsPerUser: 256}, // the rest derived
		Shaping:  Shaping{IdleEviction: 10 * time.Minute},
		Apps:     AppClasses{skypeClass()},
		Metrics:  Metrics{PerUserMaxUsers: 1000},
		TimeZone: "UTC",
		HTTP:     httpDefaults(),
		TLS:      tlsDefaults(),
	}
}

// skypeClass is the default rule for Skype, Skype for Business and Teams. Its networks
// are endpoint set 11 (category Optimize) of Microsoft's Worldwide endpoints list,
// version 2025013000, as Microsoft Learn's "Microsoft 365 URLs and IP address ranges"
// lists it (13.107.64.0/18, in the set until 2024, is gone); its names cover set 12
// (Allow) and the consumer Skype and Teams names the list leaves out. `sockshaper
// apps update-m365` refreshes the networks, names and ports from Microsoft's
// endpoints web service. TCP 443 is left out of the port-only rule because it would
// classify all web traffic as Skype.
func skypeClass() AppClass {
	return AppClass{
		Name: "skype",
		Domains: []string{
			"skype.com", "skype.net", "skypeassets.com", "skypeassets.net",
			"skypeforbusiness.com", "lync.com", "sfbassets.com",
			"teams.microsoft.com", "teams.live.com", "teams.cloud.microsoft",
		},
		Networks:        []string{"52.112.0.0/14", "52.122.0.0/15", "2603:1063::/38"},
		AnyAddressPorts: []PortRange{{Transport: "udp", First: 3478, Last: 3481}},
	}
}

// NamedDestinationSets returns the named sets that access.deny_destinations may list,
// as a new map on each call. "loopback" holds 0.0.0.0/8 and ::/128 too, because
// dialling the unspecified address reaches the local host. "metadata" is the cloud
// instance metadata services (AWS, GCP, Azure, OpenStack at 169.254.169.254; Alibaba
// at 100.100.100.200; AWS over IPv6), whose credentials a proxy must never fetch for
// a client; it overlaps link-local and private so it can be denied on its own.
// "multicast" and "broadcast" are group and limited-broadcast addresses: a UDP
// datagram relayed there would reach every host of the proxy's own networks.
// The proxy also checks the IPv4 address that NAT64, 6to4, Teredo, SIIT and
// IPv4-compatible IPv6 addresses carry against these sets.
func NamedDestinationSets() map[string][]netip.Prefix {
	return map[string][]netip.Prefix{
		"loopback":   prefixes("127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128"),
		"private":    prefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"),
		"link-local": prefixes("169.254.0.0/16", "fe80::/10"),
		"metadata":   prefixes("169.254.169.254/32", "100.100.100.200/32", "fd00:ec2::254/128"),
		"multicast":  prefixes("224.0.0.0/4", "ff00::/8"),
		"broadcast":  prefixes("255.255.255.255/32"),
	}
}

func prefixes(cidrs ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(cidrs))
	for i, s := range cidrs {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}
