package configs

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// badConfigs maps each testdata/bad-*.yaml file to the exact error Load returns for
// it. Every file needs an entry and every entry a file.
func badConfigs() map[string]string {
	return map[string]string{
		"bad-app-empty.yaml": `testdata/bad-app-empty.yaml:2: apps.skype: needs at least one of domains, networks or any_address_ports`,
		"bad-app-name.yaml": `testdata/bad-app-name.yaml:2: apps.Skype: class name must be lowercase letters, digits, "_" and "-"
testdata/bad-app-name.yaml:4: apps.other: class name "other" is reserved for traffic that matches no class`,
		"bad-app-unknown-key.yaml": `testdata/bad-app-unknown-key.yaml:4: apps.skype.port: unknown field; known fields are domains, networks, ports, any_address_ports, dscp, dscp_to_client`,
		"bad-burst-unit.yaml":      `testdata/bad-burst-unit.yaml:2: shaping.global.burst: size "256Kbit": unknown unit "Kbit"; use one of B, kB, MB, GB, KiB, MiB, GiB`,
		"bad-balancer.yaml": `testdata/bad-balancer.yaml:2: access.udp_advertise: must be an address clients can send to, not unspecified or zoned
testdata/bad-balancer.yaml:4: access.proxy_protocol.trusted[1]: "haproxy.campus" is not a CIDR or IP address: unexpected character (at "haproxy.campus")`,
		"bad-cluster.yaml": `testdata/bad-cluster.yaml:2: cluster.redis: scheme "http": want redis:// or rediss:// (TLS)`,
		"bad-cluster-password.yaml": `testdata/bad-cluster-password.yaml:3: cluster.redis: holds a password: put it in cluster.redis_password_file instead
testdata/bad-cluster-password.yaml:4: cluster.name: is 254 bytes; at most 253 (a host name's length)`,
		"bad-client-cidr.yaml": `testdata/bad-client-cidr.yaml:5: access.client_networks[2]: "10.0.0.0/33" is not a CIDR or IP address: prefix length out of range`,
		"bad-default-group-missing.yaml": `testdata/bad-default-group-missing.yaml:1: shaping.default_group: ` +
			`must name the group of users not in shaping.members, one of staff, students`,
		"bad-default-group.yaml": `testdata/bad-default-group.yaml:2: shaping.default_group: group "pupils" is not defined under shaping.groups (defined: staff, students)`,
		"bad-domain.yaml": `testdata/bad-domain.yaml:3: apps.skype.domains[1]: "-bad-.example" is not a valid domain name: ` +
			`label "-bad-" is not 1 to 63 letters, digits, "-" or "_" with no "-" at either end
testdata/bad-domain.yaml:3: apps.skype.domains[2]: "192.0.2.1" is an IP address; list it under networks`,
		"bad-duplicate-key.yaml":         `testdata/bad-duplicate-key.yaml:3: listen: is set twice (first on line 1)`,
		"bad-duration.yaml":              `testdata/bad-duration.yaml:2: timeouts.idle: must be a duration with a unit, such as 10s, 5m or 1h`,
		"bad-empty-client-networks.yaml": `testdata/bad-empty-client-networks.yaml:2: access.client_networks: is empty, so no client could connect`,
		"bad-int.yaml":                   `testdata/bad-int.yaml:1: limits.max_sessions: must be a whole number`,
		"bad-ldap-cleartext.yaml":        `testdata/bad-ldap-cleartext.yaml:3: auth.ldap.url: "ldap://ldap.campus.example" without start_tls would send passwords in clear text; use ldaps://, or set start_tls: true`,
		"bad-ldap-filter.yaml":           `testdata/bad-ldap-filter.yaml:7: auth.ldap.user_filter: "(&(uid={user})" is not an LDAP filter (RFC 4515) such as (uid={user}): unexpected end of filter`,
		"bad-ldap-groups-list.yaml": `testdata/bad-ldap-groups-list.yaml:4: auth.ldap.bind_password: unknown field; known fields are url, start_tls, ca_file, bind_dn, bind_password_file, base_dn, user_filter, user_name_case, groups, timeout, stale_window
testdata/bad-ldap-groups-list.yaml:5: auth.ldap.groups: must be a mapping of directory group DN to shaping group`,
		"bad-ldap-groups.yaml": `testdata/bad-ldap-groups.yaml:14: auth.ldap.groups["cn=faculty,ou=groups,dc=campus,dc=example"]: group "faculty" is not defined under shaping.groups (defined: staff, students)
testdata/bad-ldap-groups.yaml:15: auth.ldap.groups["CN=Staff,OU=Groups,DC=campus,DC=example"]: names the same group as an earlier entry (DNs compare without case)
testdata/bad-ldap-groups.yaml:16: auth.ldap.groups.staff: "staff" is not a distinguished name such as cn=staff,ou=groups,dc=campus,dc=example`,
		"bad-ldap-name-case.yaml": `testdata/bad-ldap-name-case.yaml:7: auth.ldap.user_name_case: "insensitive": want fold (the directory ignores case, as AD and OpenLDAP's uid do) or exact`,
		"bad-ldap-off.yaml":       `testdata/bad-ldap-off.yaml:3: auth.ldap.url: is empty, which turns the directory off, but other auth.ldap keys are set; set url or remove them`,
		"bad-ldap-required.yaml": `testdata/bad-ldap-required.yaml:2: auth.ldap.bind_dn: is required with auth.ldap.url
testdata/bad-ldap-required.yaml:2: auth.ldap.bind_password_file: is required with auth.ldap.url: a file holding the service account's password (never the password itself)
testdata/bad-ldap-required.yaml:4: auth.ldap.base_dn: "ou=people,,dc=example" is not a distinguished name: incomplete type, value pair
testdata/bad-ldap-required.yaml:5: auth.ldap.user_filter: "(uid=*)" does not contain {user}, so it cannot find the user's entry
testdata/bad-ldap-required.yaml:6: auth.ldap.timeout: must be greater than 0
testdata/bad-ldap-required.yaml:7: auth.ldap.stale_window: must not be negative (0 turns it off)`,
		"bad-ldap-scheme.yaml":   `testdata/bad-ldap-scheme.yaml:3: auth.ldap.url: "http://ldap.campus.example": want ldaps://host[:port] or ldap://host[:port] (with start_tls)`,
		"bad-ldap-stale.yaml":    `testdata/bad-ldap-stale.yaml:9: auth.ldap.stale_window: needs auth.cache_ttl above 0: only a cached login can outlast an outage`,
		"bad-ldap-starttls.yaml": `testdata/bad-ldap-starttls.yaml:4: auth.ldap.start_tls: must be false with an ldaps:// URL, which is TLS from the start; StartTLS is for ldap:// URLs`,
		"bad-http.yaml": `testdata/bad-http.yaml:3: http.listen: must differ from listen and admin_listen
testdata/bad-http.yaml:4: http.realm: must be letters, digits, spaces and ".-_:/", not empty
testdata/bad-http.yaml:5: http.connect_ports[1]: "udp/3478": CONNECT is TCP; write the port without udp/
testdata/bad-http.yaml:6: http.keepalive: must be greater than 0
testdata/bad-http.yaml:7: http.pac.proxy_host: "proxy.example:80800": port "80800" is not in 1-65535
testdata/bad-http.yaml:7: http.pac.apps[0]: app class "zoom" is not defined under the top-level apps key (defined: skype)`,
		"bad-limits.yaml": `testdata/bad-limits.yaml:2: limits.max_sessions_per_client_ip: must be at least 1
testdata/bad-limits.yaml:3: limits.max_handshakes: must not be negative (0 derives it from the descriptor limit)
testdata/bad-limits.yaml:4: limits.max_handshakes_per_client_ip: must not be negative (0 derives it from the descriptor limit)`,
		"bad-list-scalar.yaml": `testdata/bad-list-scalar.yaml:2: access.client_networks: must be a list, such as [a, b]`,
		"bad-listen.yaml": `testdata/bad-listen.yaml:1: listen: port "socks" is not a number from 0 to 65535
testdata/bad-listen.yaml:2: admin_listen: "localhost" is not host:port, such as 127.0.0.1:1080 or [::1]:1080`,
		"bad-admin-same.yaml": `testdata/bad-admin-same.yaml:2: admin_listen: must differ from listen`,
		"bad-many.yaml": `testdata/bad-many.yaml:2: listen: "localhost" is not host:port, such as 127.0.0.1:1080 or [::1]:1080
testdata/bad-many.yaml:3: auth.users_file: empty means no authentication, which is allowed only when every access.client_networks entry is loopback; set a users file, auth.ldap or auth.kerberos, or restrict client_networks
testdata/bad-many.yaml:4: auth.cache_ttl: must not be negative (0 disables the cache)
testdata/bad-many.yaml:6: access.client_networks[1]: "10.1.2.3/40" is not a CIDR or IP address: prefix length out of range
testdata/bad-many.yaml:7: timeouts.dial: must be greater than 0
testdata/bad-many.yaml:8: limits.max_sessions: must not be negative (0 derives it from the descriptor limit)
testdata/bad-many.yaml:9: shaping.default_group: must name the group of users not in shaping.members, one of students
testdata/bad-many.yaml:13: shaping.members["j.doe"]: group "staff" is not defined under shaping.groups (defined: students)
testdata/bad-many.yaml:14: shaping.idle_eviction: must be greater than 0
testdata/bad-many.yaml:17: metrics.per_user_max_users: must be at least 1 when metrics.per_user is on`,
		"bad-members-group.yaml": `testdata/bad-members-group.yaml:6: shaping.members.alice: group "staff" is not defined under shaping.groups (defined: students)`,
		"bad-named-set.yaml": `testdata/bad-named-set.yaml:2: access.deny_destinations[1]: unknown named set "privat"; ` +
			`the named sets are broadcast, link-local, loopback, metadata, multicast, private, or write a CIDR`,
		"bad-not-mapping.yaml":   `testdata/bad-not-mapping.yaml:1: must be a mapping`,
		"bad-null-value.yaml":    `testdata/bad-null-value.yaml:1: admin_listen: has no value; write "" for empty, or remove the key to keep the default`,
		"bad-open-proxy.yaml":    `testdata/bad-open-proxy.yaml: auth.users_file: empty means no authentication, which is allowed only when every access.client_networks entry is loopback; set a users file, auth.ldap or auth.kerberos, or restrict client_networks`,
		"bad-port-range.yaml":    `testdata/bad-port-range.yaml:4: apps.voip.ports[0]: port range "udp/5061-5060": first port is above the last`,
		"bad-ports-only.yaml":    `testdata/bad-ports-only.yaml:4: apps.sip.ports: narrows domains and networks matches, and this class has neither; use any_address_ports to match on the port alone`,
		"bad-rate-negative.yaml": `testdata/bad-rate-negative.yaml:2: shaping.global.download: rate "-1Mbit" is negative`,
		"bad-rate-unit.yaml":     `testdata/bad-rate-unit.yaml:4: shaping.groups.students.upload: rate "4Mb": ambiguous unit "Mb": write Mbit for bits or MB for bytes per second`,
		"bad-shaping-app.yaml":   `testdata/bad-shaping-app.yaml:3: shaping.apps.zoom: app class "zoom" is not defined under the top-level apps key (defined: skype)`,
		"bad-syntax.yaml":        `testdata/bad-syntax.yaml:3: invalid YAML: did not find expected ',' or ']'`,
		"bad-two-documents.yaml": `testdata/bad-two-documents.yaml:2: a second YAML document starts here; a config is one document`,
		"bad-throttle.yaml": `testdata/bad-throttle.yaml:4: auth.throttle.failures_per_user: must be at least 1
testdata/bad-throttle.yaml:5: auth.throttle.failures_per_address: must be at least 1
testdata/bad-throttle.yaml:6: auth.throttle.window: must be greater than 0
testdata/bad-throttle.yaml:7: auth.throttle.remember_verified: must not be negative (0 turns the exemption off)
testdata/bad-throttle.yaml:8: auth.throttle.over_allowance_interval: must not be negative (0 refuses every login over the address's allowance)`,
		"bad-throttle-burst.yaml":   `testdata/bad-throttle-burst.yaml:3: auth.throttle.over_allowance_burst: must be at least 1 with over_allowance_interval set`,
		"bad-throttle-ceiling.yaml": `testdata/bad-throttle-ceiling.yaml:3: auth.throttle.failures_per_address: must be at least failures_per_user (20): one address can hold many users`,
		"bad-unknown-key.yaml":      `testdata/bad-unknown-key.yaml:4: timeouts.handshak: unknown field; known fields are handshake, dial, idle, drain`,
		"bad-zero-timeout.yaml":     `testdata/bad-zero-timeout.yaml:3: timeouts.dial: must be greater than 0`,
		"bad-quota-no-state.yaml":   `testdata/bad-quota-no-state.yaml:5: shaping.groups.students.quota: a quota needs state_dir, the folder where usage is kept across restarts`,
		"bad-quota.yaml": `testdata/bad-quota.yaml:5: shaping.groups.students.quota: sets neither daily nor monthly; give an allowance or remove the quota
testdata/bad-quota.yaml:7: shaping.apps.skype.per_user.quota: quotas are set on groups (shaping.groups.G.quota) and users (shaping.user_quotas)
testdata/bad-quota.yaml:8: shaping.global.quota: quotas are set on groups (shaping.groups.G.quota) and users (shaping.user_quotas)
testdata/bad-quota.yaml:10: shaping.user_quotas.alice.over_rate: applies over an allowance, and this quota sets neither daily nor monthly ({} exempts the user)`,
		"bad-quota-size.yaml": `testdata/bad-quota-size.yaml:5: shaping.groups.students.quota.daily: size "2Gb": ambiguous unit "Gb": write GB or GiB
testdata/bad-quota-size.yaml:5: shaping.groups.students.quota.monthly: size "-1GiB" is negative`,
		"bad-window.yaml": `testdata/bad-window.yaml:4: shaping.groups.students.during.exams: window "exams" is not defined under shaping.windows (defined: bad name, early, lectures, nights)
testdata/bad-window.yaml:4: shaping.groups.students.during.lectures: changes nothing; set upload, download or burst
testdata/bad-window.yaml:6: shaping.apps.skype.during.lectures: changes nothing; set per_user or total limits
testdata/bad-window.yaml:6: shaping.apps.skype.per_user.during: an app class's window limits are set on the class: shaping.apps.skype.during.WINDOW.per_user
testdata/bad-window.yaml:7: shaping.global.during: during is set on groups (shaping.groups.G.during) and app classes (shaping.apps.A.during)
testdata/bad-window.yaml:9: shaping.windows.lectures.days: days "mon-fry": "fry" is not a weekday; write mon, tue, wed, thu, fri, sat or sun
testdata/bad-window.yaml:10: shaping.windows.nights.hours: hours "22:00-22:00": span "22:00-22:00" starts where it ends; write 00:00-24:00 for the whole day
testdata/bad-window.yaml:10: shaping.windows.nights.time_zone: unknown time zone "Mars/Olympus_Mons"; use an IANA name such as Europe/Berlin, or UTC
testdata/bad-window.yaml:11: shaping.windows.early.hours: hours "8:00-9:00": "8:00" is not a time of day HH:MM
testdata/bad-window.yaml:12: shaping.windows["bad name"]: window name must be letters, digits, "_" and "-"`,
		"bad-time-zone.yaml": `testdata/bad-time-zone.yaml:1: time_zone: unknown time zone "Europe/Berlinn"; use an IANA name such as Europe/Berlin, or UTC`,
		"bad-dscp.yaml": `testdata/bad-dscp.yaml:4: apps.skype.dscp: dscp "64" is not a number from 0 to 63 nor a name such as EF, AF41 or CS1
testdata/bad-dscp.yaml:7: apps.zoom.dscp: dscp "EFF" is not a number from 0 to 63 nor a name such as EF, AF41 or CS1`,
		"bad-dscp-client.yaml": `testdata/bad-dscp-client.yaml:4: apps.skype.dscp_to_client: marks packets toward the client with dscp, which this class does not set`,
	}
}

func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	badConfigs := badConfigs()
	for _, file := range files {
		name := filepath.Base(file)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			want, ok := badConfigs[name]
			if !ok {
				t.Fatalf("no expected error for %s", file)
			}
			cfg, err := Load(file)
			if err == nil {
				t.Fatalf("Load(%q) = %+v, nil; want error", file, cfg)
			}
			if got := err.Error(); got != want {
				t.Errorf("Load(%q) error:\n%s\nwant:\n%s", file, got, want)
			}
			checkFieldErrors(t, err)
		})
	}
	for name := range badConfigs {
		if !seen[name] {
			t.Errorf("testdata/%s is missing", name)
		}
	}
}

// checkFieldErrors checks that err joins only *FieldErrors, as the API promises.
func checkFieldErrors(t *testing.T, err error) {
	t.Helper()
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		if _, ok := e.(*FieldError); !ok {
			t.Errorf("error %q is a %T, not a *FieldError", e, e)
		}
	}
}

func TestErrorsUnwrap(t *testing.T) {
	_, err := Load("testdata/bad-rate-unit.yaml")
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As(%v, *FieldError) = false", err)
	}
	want := FieldError{File: "testdata/bad-rate-unit.yaml", Line: 4, Field: "shaping.groups.students.upload",
		Problem: `rate "4Mb": ambiguous unit "Mb": write Mbit for bits or MB for bytes per second`}
	if fe.File != want.File || fe.Line != want.Line || fe.Field != want.Field || fe.Problem != want.Problem {
		t.Errorf("FieldError = %+v; want %+v", *fe, want)
	}
	if _, perr := ParseRate("4Mb"); fe.Unwrap() == nil || fe.Unwrap().Error() != perr.Error() {
		t.Errorf("Unwrap() = %v; want the ParseRate error %v", fe.Unwrap(), perr)
	}
	_, err = Load("testdata/bad-syntax.yaml")
	if !errors.As(err, &fe) || fe.Unwrap() == nil {
		t.Errorf("syntax error %v does not wrap yaml's error", err)
	}
	_, err = Load("testdata/no-such-file.yaml")
	if err == nil || !strings.Contains(err.Error(), "testdata/no-such-file.yaml") {
		t.Errorf("Load of a missing file: %v; want an error naming the file", err)
	}
}

func TestFieldErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{"a.yaml", 3, "listen", "bad", nil}, "a.yaml:3: listen: bad"},
		{FieldError{"a.yaml", 0, "auth.users_file", "bad", nil}, "a.yaml: auth.users_file: bad"},
		{FieldError{"a.yaml", 7, "", "invalid YAML", nil}, "a.yaml:7: invalid YAML"},
		{FieldError{"", 0, "limits.max_sessions", "bad", nil}, "limits.max_sessions: bad"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q; want %q", tc.e, got, tc.want)
		}
	}
}

func TestValidateGoConfig(t *testing.T) {
	cfg := Defaults()
	cfg.Source = "test"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
	if len(cfg.Access.ClientPrefixes) != 2 || len(cfg.Access.DeniedPrefixes) != 17 || len(cfg.Apps[0].Prefixes) != 3 {
		t.Errorf("Validate did not fill the prefixes: %v %v %v",
			cfg.Access.ClientPrefixes, cfg.Access.DeniedPrefixes, cfg.Apps[0].Prefixes)
	}
	if err := cfg.Validate(); err != nil || len(cfg.Access.DeniedPrefixes) != 17 {
		t.Errorf("second Validate() = %v, %d denied prefixes; want nil, 17", err, len(cfg.Access.DeniedPrefixes))
	}
	cfg.Limits.MaxSessions = -1
	cfg.Shaping.Global.Upload = -1
	cfg.Apps[0].AnyAddressPorts = []PortRange{{Transport: "sctp", First: 1, Last: 2}, {First: 9, Last: 8}}
	want := `test: limits.max_sessions: must not be negative (0 derives it from the descriptor limit)
test: shaping.global.upload: must not be negative
test: apps.skype.any_address_ports[0]: unknown transport "sctp"; use tcp, udp or empty for both
test: apps.skype.any_address_ports[1]: first port is above the last`
	if err := cfg.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v; want\n%s", err, want)
	}
}
