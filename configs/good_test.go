package configs

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

func mustPrefixes(t *testing.T, cidrs ...string) []netip.Prefix {
	t.Helper()
	ps := make([]netip.Prefix, len(cidrs))
	for i, s := range cidrs {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

func TestGoodConfig(t *testing.T) {
	got, err := Load("testdata/good.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := goodConfig(t)
	gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range gv.NumField() {
		if g, w := gv.Field(i).Interface(), wv.Field(i).Interface(); !reflect.DeepEqual(g, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", gv.Type().Field(i).Name, g, w)
		}
	}
}

// goodConfig is what testdata/good.yaml holds.
func goodConfig(t *testing.T) *Config {
	abs, _ := filepath.Abs("testdata/users.htpasswd")
	ca, _ := filepath.Abs("testdata/campus-ca.pem")
	keytab, _ := filepath.Abs("testdata/proxy.keytab")
	state, _ := filepath.Abs("testdata/state")
	berlin, newYork := mustZone(t, "Europe/Berlin"), mustZone(t, "America/New_York")
	rate := func(r Rate) *Rate { return &r }
	size := func(b ByteSize) *ByteSize { return &b }
	return &Config{
		Listen:      "[::]:1081",
		AdminListen: "",
		Auth: Auth{UsersFile: abs, CacheTTL: 30 * time.Second, RequireTLS: true, Throttle: AuthThrottle{
			FailuresPerUser: 5, FailuresPerAddress: 50, Window: 2 * time.Minute, RememberVerified: 0,
			OverAllowanceInterval: 2 * time.Second, OverAllowanceBurst: 5,
		}, LDAP: LDAP{
			URL: "ldap://dc1.campus.example", StartTLS: true, CAFile: ca,
			BindDN: "CN=sockshaper,OU=Services,DC=campus,DC=example", BindPasswordFile: "/etc/sockshaper/ldap.secret",
			BaseDN: "OU=People,DC=campus,DC=example", UserFilter: "(&(objectClass=user)(sAMAccountName={user}))", UserNameCase: NameCaseExact,
			Groups: LDAPGroups{
				{"CN=Staff,OU=Groups,DC=campus,DC=example", "staff"},
				{"CN=Guests,OU=Groups,DC=campus,DC=example", "guests.wifi"},
				{"CN=All Staff,OU=Groups,DC=campus,DC=example", "staff"},
			},
			Timeout: 3 * time.Second, StaleWindow: 10 * time.Minute,
		}, Kerberos: Kerberos{
			KeytabFile: keytab, ServiceNames: []string{"HTTP/proxy.campus.example", "rcmd/proxy.campus.example"},
			Realms: []string{"CAMPUS.EXAMPLE", "PARTNER.EXAMPLE"}, UserName: KerberosFullNames, MaxClockSkew: 2 * time.Minute,
			Enctypes: []string{"aes256-cts-hmac-sha1-96", "arcfour-hmac"}, LDAPUserFilter: "(userPrincipalName={user})",
		}},
		Access: Access{
			ClientNetworks:   []string{"10.0.0.0/8", "192.0.2.7", "::ffff:172.16.0.0/108", "10.1.2.3/16"},
			DenyDestinations: []string{"metadata", "198.51.100.0/24", "203.0.113.9"},
			Bind:             true,
			UDPAssociate:     false,
			ClientPrefixes:   mustPrefixes(t, "10.0.0.0/8", "192.0.2.7/32", "172.16.0.0/12", "10.1.0.0/16"),
			DeniedPrefixes: mustPrefixes(t, "169.254.169.254/32", "100.100.100.200/32", "fd00:ec2::254/128",
				"198.51.100.0/24", "203.0.113.9/32"),
			DeniedRules: []string{"metadata", "metadata", "metadata", "198.51.100.0/24", "203.0.113.9/32"},
		},
		Timeouts: Timeouts{Handshake: 5 * time.Second, Dial: 3 * time.Second, Idle: 2 * time.Minute, Drain: 90 * time.Second},
		Limits:   Limits{MaxSessions: 100, MaxSessionsPerClientIP: 10, MaxSessionsPerUser: 5, MaxHandshakes: 300, MaxHandshakesPerClientIP: 20},
		Shaping: Shaping{
			DefaultGroup: "students",
			Groups: map[string]Limit{
				"students": {Upload: 500000, Download: 2000000, Burst: 262144,
					Quota: &Quota{Daily: 2 << 30, Monthly: 20 << 30, OverRate: 32000},
					During: map[string]WindowLimit{
						"lectures": {Download: rate(500000)},
						"nights":   {Upload: rate(0), Burst: size(1 << 20)},
					}},
				"staff":       {Upload: 1048576, Download: 187500, Burst: 64000, Quota: &Quota{Monthly: 100e9}},
				"guests.wifi": {Upload: 64000},
			},
			Members: map[string]string{"alice": "staff", "j.doe": "guests.wifi"},
			Apps: map[string]AppLimits{
				"zoom": {PerUser: Limit{Upload: 125000, Download: 250000, Burst: 32768}, Total: Limit{Download: 62500000},
					During: map[string]AppWindow{"lectures": {
						PerUser: WindowLimit{Download: rate(64000)}, Total: WindowLimit{Upload: rate(1250000)},
					}}},
				"skype": {Total: Limit{Upload: 100000000, Download: 125000000}},
			},
			Global:       Limit{Upload: 125000000, Download: 1250000000},
			IdleEviction: time.Hour,
			Windows: map[string]Window{
				"lectures": {Days: "mon-fri", Hours: "08:00-18:00", TimeZone: "America/New_York",
					Weekdays: 0b0111110, Spans: []Span{{8 * 60, 18 * 60}}, Location: newYork},
				"nights": {Days: "sat,sun-tue", Hours: "22:00-06:00,12:00-13:00",
					Weekdays: 0b1000111, Spans: []Span{{22 * 60, 6 * 60}, {12 * 60, 13 * 60}}, Location: berlin},
			},
			UserQuotas: map[string]Quota{"alice": {Monthly: 1 << 30, OverRate: 125000}, "bob": {}},
		},
		StateDir: state,
		TimeZone: "Europe/Berlin",
		Location: berlin,
		Apps: AppClasses{
			{
				Name:     "zoom",
				Domains:  []string{"zoom.us", "zoom.com", "zoomgov.com"},
				Networks: []string{"3.7.35.0/25"},
				Ports:    []PortRange{{"tcp", 443, 443}, {"", 8801, 8810}},
				Prefixes: mustPrefixes(t, "3.7.35.0/25"),
				DSCP:     34, DSCPToClient: true,
			},
			{
				Name:            "skype",
				Networks:        []string{"2603:1063::/38", "52.112.0.0/14"},
				AnyAddressPorts: []PortRange{{"udp", 3478, 3481}},
				Prefixes:        mustPrefixes(t, "2603:1063::/38", "52.112.0.0/14"),
				DSCP:            46,
			},
			{Name: "sip", AnyAddressPorts: []PortRange{{"", 5060, 5060}, {"udp", 5061, 5061}}},
		},
		Metrics: Metrics{PerUser: true, PerUserMaxUsers: 50, Pprof: true},
		HTTP: HTTP{Listen: "127.0.0.1:3128", Realm: "Campus proxy", ConnectPorts: []PortRange{{"", 443, 443}, {"", 8443, 8444}},
			ForwardedFor: true, KeepAlive: 15 * time.Second, PAC: PAC{ProxyHost: "proxy.campus.example", Apps: []string{"skype", "zoom"}}},
		TLS: TLS{Listen: "127.0.0.1:3129", CertFile: filepath.Join(filepath.Dir(abs), "proxy.pem"), KeyFile: "/etc/sockshaper/proxy.key",
			MaxConcurrentStreams: 50},
		Source: "testdata/good.yaml",
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestDefault(t *testing.T) {
	got, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	// default.yaml is the Go defaults plus the design's shaping example; anything
	// else it says must agree with Defaults.
	want := Defaults()
	want.Source = "embedded default"
	want.Shaping = Shaping{
		DefaultGroup: "students",
		Groups: map[string]Limit{
			"students": {Upload: 500000, Download: 2000000, Burst: 256 << 10},
			"staff":    {Upload: 2500000, Download: 12500000},
		},
		Apps: map[string]AppLimits{
			"skype": {PerUser: Limit{Upload: 125000, Download: 250000}, Total: Limit{Download: 62500000}},
		},
		Global:       Limit{Upload: 125000000, Download: 125000000},
		IdleEviction: 10 * time.Minute,
	}
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", got, &want)
	}
	if string(DefaultYAML()) != defaultYAML {
		t.Error("DefaultYAML differs from default.yaml")
	}
	DefaultYAML()[0] = 'X'
	if defaultYAML[0] == 'X' {
		t.Error("DefaultYAML returned the embedded bytes themselves")
	}
}

func TestExample(t *testing.T) {
	cfg, err := Load("sockshaper.example.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if abs, _ := filepath.Abs("users.htpasswd"); cfg.Auth.UsersFile != abs {
		t.Errorf("users_file = %q; want %q", cfg.Auth.UsersFile, abs)
	}
	def, _ := Default()
	def.Apps[0].Ports = []PortRange{} // the example writes "ports: []" to show the key
	if !reflect.DeepEqual(cfg.Apps, def.Apps) {
		t.Errorf("example apps %+v differ from the default %+v", cfg.Apps, def.Apps)
	}
	data, err := os.ReadFile("sockshaper.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	for _, missing := range missingKeys(root.Content[0], reflect.TypeFor[Config](), "") {
		// A group's quota and window limits share the Limit type with global,
		// where validation refuses them; the example shows them on a group.
		if missing == "shaping.global.quota" || missing == "shaping.global.during" {
			continue
		}
		t.Errorf("the example does not show %s", missing)
	}
	students := cfg.Shaping.Groups["students"]
	if students.Quota == nil || len(students.During) == 0 || len(cfg.Shaping.Apps["skype"].During) == 0 {
		t.Error("the example shows no group quota, group window limit or app window limit")
	}
}

// missingKeys lists the struct fields of t that mapping n does not set, recursing
// into struct fields and the first app class.
func missingKeys(n *yaml.Node, t reflect.Type, prefix string) []string {
	if t == reflect.TypeFor[AppClasses]() {
		return missingKeys(n.Content[1], reflect.TypeFor[AppClass](), prefix+n.Content[0].Value+".")
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[PortRange]() {
		return nil
	}
	var missing []string
	for _, name := range knownFields(t) {
		k, v := lookupKey(n, name)
		if k == nil {
			missing = append(missing, prefix+name)
			continue
		}
		ft, _ := fieldType(t, name)
		missing = append(missing, missingKeys(v, ft, prefix+name+".")...)
	}
	return missing
}

func TestSampleUsersFile(t *testing.T) {
	data, err := os.ReadFile("users.htpasswd")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	user, hash, _ := strings.Cut(lines[0], ":")
	if len(lines) != 1 || user != "alice" || !strings.HasPrefix(hash, "$2y$10$") {
		t.Fatalf("users.htpasswd = %q; want one line alice:$2y$10$...", data)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("wonderland")); err != nil {
		t.Errorf("alice's password is not wonderland: %v", err)
	}
}

func TestAppsOrderAndReplace(t *testing.T) {
	cfg, err := Parse([]byte("apps:\n  zeta: {domains: [z.example]}\n  alpha: {networks: [192.0.2.0/24]}\n"+
		"  mid: {any_address_ports: [udp/9]}\n"), "order")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cfg.Apps {
		names = append(names, c.Name)
	}
	if want := []string{"zeta", "alpha", "mid"}; !slices.Equal(names, want) {
		t.Errorf("class order = %v; want %v (the file's order, default skype replaced)", names, want)
	}
}

func TestListsReplaceDefaults(t *testing.T) {
	cfg, err := Parse([]byte("access:\n  deny_destinations: [private]\n  client_networks: [\"::1\"]\n"), "lists")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Access.DenyDestinations, []string{"private"}) ||
		!slices.Equal(cfg.Access.ClientNetworks, []string{"::1"}) {
		t.Errorf("lists = %v, %v; want the file's lists only", cfg.Access.DenyDestinations, cfg.Access.ClientNetworks)
	}
	if !cfg.Access.UDPAssociate || cfg.Timeouts.Idle != 5*time.Minute || len(cfg.Apps) != 1 {
		t.Errorf("keys the file does not set lost their defaults: %+v", cfg)
	}
}

func TestEmptyConfigIsDefaults(t *testing.T) {
	want := Defaults()
	want.Source = "empty"
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{"", "# only a comment\n", "---\n", "~\n", "auth:\n"} {
		got, err := Parse([]byte(data), "empty")
		if err != nil || !reflect.DeepEqual(got, &want) {
			t.Errorf("Parse(%q) = %+v, %v; want the defaults", data, got, err)
		}
	}
}

func TestUsersFileResolution(t *testing.T) {
	dir := t.TempDir()
	write := func(name, usersFile string) string {
		p := filepath.Join(dir, name)
		data := "auth: {users_file: " + usersFile + "}\naccess: {client_networks: [10.0.0.0/8]}\n"
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ usersFile, want string }{
		{"users.htpasswd", filepath.Join(dir, "users.htpasswd")},
		{"sub/users", filepath.Join(dir, "sub", "users")},
		{"../users", filepath.Join(filepath.Dir(dir), "users")},
		{"/etc/sockshaper/users", "/etc/sockshaper/users"},
	} {
		cfg, err := Load(write("c.yaml", tc.usersFile))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Auth.UsersFile != tc.want {
			t.Errorf("users_file %q: got %q; want %q", tc.usersFile, cfg.Auth.UsersFile, tc.want)
		}
	}
	// A relative config path resolves against the working directory first.
	write("rel.yaml", "users")
	t.Chdir(dir)
	cfg, err := Load("rel.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.UsersFile != filepath.Join(dir, "users") {
		t.Errorf("Load(rel.yaml): users_file %q; want %q", cfg.Auth.UsersFile, filepath.Join(dir, "users"))
	}
	// Parse does not know a folder and leaves the path as written.
	p, err := Parse([]byte("auth: {users_file: users}\naccess: {client_networks: [10.0.0.0/8]}\n"), "p")
	if err != nil {
		t.Fatal(err)
	}
	if p.Auth.UsersFile != "users" {
		t.Errorf("Parse: users_file %q; want %q", p.Auth.UsersFile, "users")
	}
}

func TestNamedDestinationSets(t *testing.T) {
	sets := NamedDestinationSets()
	if !slices.Contains(sets["loopback"], netip.MustParsePrefix("0.0.0.0/8")) {
		t.Error("loopback does not hold 0.0.0.0/8")
	}
	sets["loopback"][0] = netip.Prefix{}
	delete(sets, "private")
	again := NamedDestinationSets()
	if again["loopback"][0] != netip.MustParsePrefix("127.0.0.0/8") || again["private"] == nil {
		t.Error("NamedDestinationSets shares its map or slices between calls")
	}
}

// TestDockerConfig checks the container's config: it must load, listen on every
// address inside the container, and still require authentication.
func TestDockerConfig(t *testing.T) {
	cfg, err := Load("docker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:1080" || cfg.AdminListen != "0.0.0.0:9180" {
		t.Errorf("docker.yaml listens on %s and %s", cfg.Listen, cfg.AdminListen)
	}
	if filepath.Base(cfg.Auth.UsersFile) != "users.htpasswd" {
		t.Errorf("docker.yaml users file %q", cfg.Auth.UsersFile)
	}
}
