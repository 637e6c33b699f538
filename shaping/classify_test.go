package shaping

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

func prefixes(cidrs ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, c := range cidrs {
		ps = append(ps, netip.MustParsePrefix(c))
	}
	return ps
}

func ports(transport string, first, last uint16) configs.PortRange {
	return configs.PortRange{Transport: transport, First: first, Last: last}
}

// testClasses are rules in the shape of the default config plus classes that
// exercise ordering, any-address ports and port restrictions.
func testClasses() configs.AppClasses {
	return configs.AppClasses{
		{
			Name:            "skype",
			Domains:         []string{"skype.com", "teams.microsoft.com", "lync.com"},
			Prefixes:        prefixes("13.107.64.0/18", "52.112.0.0/14", "2603:1063::/38", "::ffff:198.51.100.0/120"),
			Ports:           []configs.PortRange{ports("tcp", 443, 443), ports("tcp", 80, 80), ports("udp", 3478, 3481)},
			AnyAddressPorts: []configs.PortRange{ports("udp", 3478, 3481)},
		},
		{Name: "microsoft", Domains: []string{"microsoft.com"}},
		{Name: "ssh", Prefixes: prefixes("10.0.0.0/8"), Ports: []configs.PortRange{ports("tcp", 22, 22)}},
		{Name: "dns", AnyAddressPorts: []configs.PortRange{ports("", 53, 53)}},
		{Name: "video", Domains: []string{".YouTube.com.", "googlevideo.com"}},
	}
}

func TestClassify(t *testing.T) {
	c := NewClassifier(testClasses())
	ip := netip.MustParseAddr
	tests := []struct {
		name string
		t    Target
		want string
	}{
		{"domain exact", Target{Transport: "tcp", Host: "skype.com", Port: 443}, "skype"},
		{"subdomain", Target{Transport: "tcp", Host: "a.skype.com", Port: 443}, "skype"},
		{"deep subdomain", Target{Transport: "tcp", Host: "x.y.skype.com", Port: 80}, "skype"},
		{"no label boundary", Target{Transport: "tcp", Host: "notskype.com", Port: 443}, Other},
		{"suffix inside", Target{Transport: "tcp", Host: "skype.com.evil.net", Port: 443}, Other},
		{"shorter", Target{Transport: "tcp", Host: "kype.com", Port: 443}, Other},
		{"bare dot prefix", Target{Transport: "tcp", Host: ".skype.com", Port: 443}, "skype"},
		{"trailing dot", Target{Transport: "tcp", Host: "skype.com.", Port: 443}, "skype"},
		{"upper case", Target{Transport: "tcp", Host: "WEB.SKYPE.COM.", Port: 443}, "skype"},
		{"config domain normalised", Target{Transport: "tcp", Host: "www.youtube.com", Port: 8443}, "video"},
		{"port restricts domain", Target{Transport: "tcp", Host: "skype.com", Port: 8080}, Other},
		{"transport restricts domain", Target{Transport: "udp", Host: "skype.com", Port: 443}, Other},
		{"first match wins", Target{Transport: "tcp", Host: "teams.microsoft.com", Port: 443}, "skype"},
		{"later class when earlier port-restricted", Target{Transport: "tcp", Host: "teams.microsoft.com", Port: 8443}, "microsoft"},
		{"parent domain is later class", Target{Transport: "tcp", Host: "microsoft.com", Port: 443}, "microsoft"},
		{"sni", Target{Transport: "tcp", Addr: ip("192.0.2.1"), Port: 443, SNI: "teams.microsoft.com"}, "skype"},
		{"sni case", Target{Transport: "tcp", Addr: ip("192.0.2.1"), Port: 443, SNI: "Edge.Skype.Com"}, "skype"},
		{"sni no boundary", Target{Transport: "tcp", Addr: ip("192.0.2.1"), Port: 443, SNI: "evilskype.com"}, Other},
		{"cidr v4", Target{Transport: "tcp", Addr: ip("52.113.7.9"), Port: 443}, "skype"},
		{"cidr v4 edge", Target{Transport: "tcp", Addr: ip("52.115.255.255"), Port: 443}, "skype"},
		{"cidr v4 outside", Target{Transport: "tcp", Addr: ip("52.116.0.0"), Port: 443}, Other},
		{"cidr v6", Target{Transport: "tcp", Addr: ip("2603:1063:2::1"), Port: 443}, "skype"},
		{"cidr v6 outside", Target{Transport: "tcp", Addr: ip("2603:1064::1"), Port: 443}, Other},
		{"4in6 address unmapped", Target{Transport: "tcp", Addr: ip("::ffff:52.112.0.1"), Port: 443}, "skype"},
		{"4in6 prefix unmapped", Target{Transport: "tcp", Addr: ip("198.51.100.7"), Port: 443}, "skype"},
		{"v6 zone ignored", Target{Transport: "tcp", Addr: ip("2603:1063::1%eth0"), Port: 443}, "skype"},
		{"cidr port restricted", Target{Transport: "tcp", Addr: ip("52.112.0.1"), Port: 25}, Other},
		{"cidr udp media", Target{Transport: "udp", Addr: ip("52.112.0.1"), Port: 3480}, "skype"},
		{"any address udp 3478", Target{Transport: "udp", Addr: ip("8.8.8.8"), Port: 3478}, "skype"},
		{"any address udp 3481", Target{Transport: "udp", Host: "turn.example.org", Port: 3481}, "skype"},
		{"any address udp 3482", Target{Transport: "udp", Addr: ip("8.8.8.8"), Port: 3482}, Other},
		{"any address udp 3477", Target{Transport: "udp", Addr: ip("8.8.8.8"), Port: 3477}, Other},
		{"any address not tcp", Target{Transport: "tcp", Addr: ip("8.8.8.8"), Port: 3478}, Other},
		{"any address both transports", Target{Transport: "tcp", Addr: ip("8.8.8.8"), Port: 53}, "dns"},
		{"any address both transports udp", Target{Transport: "udp", Port: 53}, "dns"},
		{"ssh net and port", Target{Transport: "tcp", Addr: ip("10.1.2.3"), Port: 22}, "ssh"},
		{"ssh net other port", Target{Transport: "tcp", Addr: ip("10.1.2.3"), Port: 23}, Other},
		{"unknown address", Target{Transport: "tcp", Port: 443}, Other},
		{"zero target", Target{}, Other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Classify(tc.t); got != tc.want {
				t.Errorf("Classify(%+v) = %q, want %q", tc.t, got, tc.want)
			}
		})
	}
}

func TestClassifierNames(t *testing.T) {
	c := NewClassifier(testClasses())
	want := []string{"skype", "microsoft", "ssh", "dns", "video", Other}
	if got := c.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	c.Names()[0] = "changed"
	if got := c.Names()[0]; got != "skype" {
		t.Errorf("Names() shares its slice: %q", got)
	}
	var zero Classifier
	if got, want := zero.Names(), []string{Other}; !slices.Equal(got, want) {
		t.Errorf("zero Names() = %q, want %q", got, want)
	}
	if got := zero.Classify(Target{Transport: "udp", Port: 3478}); got != Other {
		t.Errorf("zero Classify = %q", got)
	}
}

func TestWantsSNI(t *testing.T) {
	c := NewClassifier(testClasses())
	ip := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name string
		t    Target
		want bool
	}{
		{"tcp 443 to ip", Target{Transport: "tcp", Addr: ip, Port: 443}, true},
		{"tcp 80 restricted with domains", Target{Transport: "tcp", Addr: ip, Port: 80}, true},
		{"tcp 8443 no class", Target{Transport: "tcp", Addr: ip, Port: 8443}, false},
		{"name given", Target{Transport: "tcp", Host: "example.org", Port: 443}, false},
		{"udp", Target{Transport: "udp", Addr: ip, Port: 443}, false},
		{"already first class by network", Target{Transport: "tcp", Addr: netip.MustParseAddr("52.112.0.1"), Port: 443}, false},
		{"ssh class ahead has no domains", Target{Transport: "tcp", Addr: netip.MustParseAddr("10.0.0.1"), Port: 22}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.WantsSNI(tc.t); got != tc.want {
				t.Errorf("WantsSNI(%+v) = %v, want %v", tc.t, got, tc.want)
			}
		})
	}
	noDomains := NewClassifier(configs.AppClasses{{Name: "ssh", Prefixes: prefixes("10.0.0.0/8")}})
	if noDomains.WantsSNI(Target{Transport: "tcp", Addr: ip, Port: 443}) {
		t.Error("WantsSNI true without any domain rule")
	}
}

func TestClassifyAllocs(t *testing.T) {
	c := NewClassifier(testClasses())
	tg := Target{Transport: "tcp", Addr: netip.MustParseAddr("192.0.2.1"), Port: 443, SNI: "X.YOUTUBE.COM."}
	if n := testing.AllocsPerRun(100, func() { c.Classify(tg) }); n != 0 {
		t.Errorf("Classify allocates %v times", n)
	}
}

// FuzzClassify compares domain matching with a plain reference (ASCII lowercase,
// one trailing dot dropped, HasSuffix on "."+domain) and checks that Classify
// returns a known name and ignores case and a trailing dot.
func FuzzClassify(f *testing.F) {
	f.Add("tcp", "a.skype.com", []byte{52, 112, 0, 1}, uint16(443), "")
	f.Add("udp", "", []byte{8, 8, 8, 8}, uint16(3478), "teams.microsoft.com")
	f.Add("tcp", "notskype.com.", []byte{0x26, 0x03, 0x10, 0x63, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(80), "YouTube.com")
	c := NewClassifier(testClasses())
	names := c.Names()
	f.Fuzz(func(t *testing.T, transport, host string, addr []byte, port uint16, sni string) {
		a, _ := netip.AddrFromSlice(addr)
		tg := Target{Transport: transport, Host: host, Addr: a, Port: port, SNI: sni}
		got := c.Classify(tg)
		if !slices.Contains(names, got) {
			t.Fatalf("Classify = %q, not in %q", got, names)
		}
		if up := (Target{Transport: transport, Host: strings.ToUpper(host), Addr: a, Port: port, SNI: sni}); c.Classify(up) != got && isASCII(host) {
			t.Fatalf("upper-case host changed %q", got)
		}
		// Domains only: the skype class restricted to its ports, the video class not.
		vt := Target{Transport: "tcp", Host: host, Port: 8443}
		if want := refMatch(host, "youtube.com") || refMatch(host, "googlevideo.com") ||
			refMatch(host, "microsoft.com"); (c.Classify(vt) != Other) != want {
			t.Fatalf("Classify(%q) = %q, reference says match=%v", host, c.Classify(vt), want)
		}
	})
}

func refMatch(name, domain string) bool {
	name = strings.TrimSuffix(asciiLower(name), ".")
	return name == domain || strings.HasSuffix(name, "."+domain)
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestDefaultConfig runs the embedded default config through the classifier and
// the registry: the rules operators start from must classify Teams and Skype,
// and the default shaping must give students their group rate.
func TestDefaultConfig(t *testing.T) {
	cfg, err := configs.Default()
	if err != nil {
		t.Fatal(err)
	}
	c := NewClassifier(cfg.Apps)
	ip := netip.MustParseAddr
	for _, tc := range []struct {
		t    Target
		want string
	}{
		{Target{Transport: "tcp", Host: "teams.microsoft.com", Port: 443}, "skype"},
		{Target{Transport: "tcp", Addr: ip("192.0.2.1"), Port: 443, SNI: "web.skype.com"}, "skype"},
		{Target{Transport: "tcp", Addr: ip("52.113.1.1"), Port: 443}, "skype"},
		{Target{Transport: "udp", Addr: ip("198.51.100.1"), Port: 3478}, "skype"},
		{Target{Transport: "tcp", Host: "www.microsoft.com", Port: 443}, Other},
	} {
		if got := c.Classify(tc.t); got != tc.want {
			t.Errorf("default rules: Classify(%+v) = %q, want %q", tc.t, got, tc.want)
		}
	}
	if !c.WantsSNI(Target{Transport: "tcp", Addr: ip("192.0.2.1"), Port: 443}) {
		t.Error("default rules do not want SNI for TCP 443 to an address")
	}
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(cfg.Shaping)
		l := r.Acquire(Who{User: "someone"}, "web")
		defer l.Release()
		if l.Unshaped() {
			t.Fatal("default config leaves students unshaped")
		}
		rate := int64(cfg.Shaping.Groups[cfg.Shaping.DefaultGroup].Download)
		within(t, "student download in 10 s", copyFor(t, l.Download(), 10*time.Second), 10*rate, 0.02)
	})
}
