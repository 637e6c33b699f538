package m365

import (
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sockshaper/sockshaper/configs"
)

func recorded(t testing.TB) []EndpointSet {
	t.Helper()
	data, err := os.ReadFile("testdata/endpoints-worldwide-skype.json")
	if err != nil {
		t.Fatal(err)
	}
	sets, err := ParseEndpoints(data)
	if err != nil {
		t.Fatal(err)
	}
	return sets
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func ports(ss ...string) []configs.PortRange {
	out := make([]configs.PortRange, len(ss))
	for i, s := range ss {
		pr, err := configs.ParsePortRange(s)
		if err != nil {
			panic(err)
		}
		out[i] = pr
	}
	return out
}

// teamsNetworks are the networks of sets 11 and 12 of version 2025013000.
func teamsNetworks() []netip.Prefix {
	return prefixes("52.112.0.0/14", "52.122.0.0/15", "52.238.119.141/32", "52.244.160.207/32",
		"2603:1027::/48", "2603:1037::/48", "2603:1047::/48", "2603:1057::/48", "2603:1063::/38",
		"2620:1ec:6::/48", "2620:1ec:40::/42")
}

// TestConvertRecorded converts the recorded response: the Teams sets' names,
// networks and ports, nothing of the Default, Common and Exchange sets
// (13.107.64.0/18 comes only in a Default set), and every hostile value skipped
// with its reason.
func TestConvertRecorded(t *testing.T) {
	r, err := Convert(recorded(t), Options{ServiceArea: "Skype", Categories: []string{"Optimize", "Allow"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"lync.com", "teams.cloud.microsoft", "teams.microsoft.com"}; !reflect.DeepEqual(r.Domains, want) {
		t.Errorf("domains %v, want %v", r.Domains, want)
	}
	if want := teamsNetworks(); !reflect.DeepEqual(r.Networks, want) {
		t.Errorf("networks %v\nwant %v", r.Networks, want)
	}
	if want := ports("tcp/80", "tcp/443", "udp/3478-3481"); !reflect.DeepEqual(r.Ports, want) {
		t.Errorf("ports %v, want %v (the documentation range's 1-65535 must not count)", r.Ports, want)
	}
	if want := []int64{11, 12, 9001, 9002}; !reflect.DeepEqual(r.Sets, want) {
		t.Errorf("sets %v, want %v", r.Sets, want)
	}
	if r.OtherAreas != 4 || r.OtherCategories != 8 {
		t.Errorf("%d sets of other areas, %d of other categories; want 4 and 8", r.OtherAreas, r.OtherCategories)
	}
	var skipped []string
	for _, s := range r.Skipped {
		skipped = append(skipped, s.String())
	}
	all := strings.Join(skipped, "\n")
	for _, want := range []string{
		`endpoint set 9001: "teams.microsoft.com/path" skipped: has a scheme or path`,
		`endpoint set 9001: "https://teams.microsoft.com" skipped: has a scheme or path`,
		`endpoint set 9001: "teams.microsoft.com:443" skipped: has a port`,
		`endpoint set 9001: "*" skipped: a wildcard inside a name`,
		`endpoint set 9001: "com" skipped: a single label`,
		`endpoint set 9001: "co.uk" skipped: a public suffix`,
		`endpoint set 9001: "*-admin.teams.microsoft.com" skipped: a wildcard inside a name`,
		`endpoint set 9001: "autodiscover.*.lync.com" skipped: a wildcard inside a name`,
		`endpoint set 9001: "evil..example" skipped: not a host name`,
		`skipped: longer than a host name can be`,
		`endpoint set 9001: "тест.example" skipped: not a host name`,
		`endpoint set 9001: "52.112.0.0/33" skipped: not a CIDR prefix`,
		`endpoint set 9001: "not-an-ip" skipped: not a CIDR prefix`,
		`endpoint set 9001: "0.0.0.0/0" skipped: broader than /8`,
		`endpoint set 9001: "10.0.0.0/8" skipped: reaches special-purpose range 10.0.0.0/8`,
		`endpoint set 9001: "127.0.0.1/32" skipped: reaches special-purpose range 127.0.0.0/8`,
		`endpoint set 9001: "192.168.1.0/24" skipped: reaches special-purpose range 192.168.0.0/16`,
		`endpoint set 9001: "100.64.0.0/10" skipped: reaches special-purpose range 100.64.0.0/10`,
		`endpoint set 9001: "::/0" skipped: broader than`,
		`endpoint set 9001: "fe80::/64" skipped: not global unicast IPv6`,
		`endpoint set 9001: "fd00:1::/48" skipped: not global unicast IPv6`,
		`endpoint set 9001: "2001:db8::/32" skipped: reaches special-purpose range 2001:db8::/32`,
		`skipped: longer than a CIDR prefix can be`,
		`endpoint set 9001: "0-99999" skipped: tcp ports: port range "0-99999": port 0 is not in 1-65535`,
		`endpoint set 9001: "65536" skipped: tcp ports: port range "65536": port 65536 is not in 1-65535`,
		`endpoint set 9001: "80-79" skipped: tcp ports: port range "80-79": first port is above the last`,
		`endpoint set 9001: "abc" skipped: tcp ports`,
		`endpoint set 9001: "tcp/3478" skipped: udp port "tcp/3478" names a transport of its own`,
		`endpoint set 9004: "203.0.113.0/24" skipped: reaches special-purpose range 203.0.113.0/24`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no skipped value says %q; skipped:\n%s", want, all)
		}
	}
	if r.SkippedTotal != len(r.Skipped) || r.SkippedTotal != 29 {
		t.Errorf("%d skipped (%d listed), want 29", r.SkippedTotal, len(r.Skipped))
	}
}

func TestConvertOptimizeOnly(t *testing.T) {
	r, err := Convert(recorded(t), Options{ServiceArea: "skype", Categories: []string{"optimize"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := prefixes("52.112.0.0/14", "52.122.0.0/15", "2603:1063::/38"); !reflect.DeepEqual(r.Networks, want) ||
		len(r.Domains) != 0 || !reflect.DeepEqual(r.Sets, []int64{11}) ||
		!reflect.DeepEqual(r.Ports, ports("udp/3478-3481")) {
		t.Errorf("Optimize only: %+v", r.Rules)
	}
}

func TestConvertRefuses(t *testing.T) {
	many := EndpointSet{ID: 1, ServiceArea: "Skype", Category: "Allow"}
	for i := range MaxNetworks + 1 {
		many.IPs = append(many.IPs, fmt.Sprintf("52.%d.%d.0/24", 112+i/256, i%256))
	}
	names := EndpointSet{ID: 2, ServiceArea: "Skype", Category: "Allow"}
	for i := range MaxDomains + 1 {
		names.URLs = append(names.URLs, fmt.Sprintf("n%d.teams.example", i))
	}
	onlyBad := EndpointSet{ID: 3, ServiceArea: "Skype", Category: "Optimize", IPs: []string{"0.0.0.0/0"}, URLs: []string{"com"}}
	for _, tt := range []struct {
		name string
		sets []EndpointSet
		o    Options
		want string
	}{
		{"too many networks", []EndpointSet{many}, Options{"Skype", []string{"Allow"}}, "4097 distinct networks, more than the 4096 accepted"},
		{"too many names", []EndpointSet{names}, Options{"Skype", []string{"Allow"}}, "4097 distinct names, more than the 4096 accepted"},
		{"nothing usable", []EndpointSet{onlyBad}, Options{"Skype", []string{"Optimize", "Allow"}}, "no usable name or network in the Skype sets of category Allow or Optimize"},
		{"no sets", nil, Options{"Skype", []string{"Optimize"}}, "no usable name or network"},
		{"Default", recorded(t), Options{"Skype", []string{"Default"}}, `category "Default": want Optimize or Allow`},
		{"no category", recorded(t), Options{"Skype", nil}, "no category chosen"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Convert(tt.sets, tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReduce(t *testing.T) {
	nets := map[netip.Prefix]bool{}
	for _, p := range prefixes("52.112.0.0/14", "52.113.0.0/16", "52.116.0.0/16", "52.112.0.0/14", "2603:1063::/38", "2603:1063:1::/48", "52.0.0.0/8") {
		nets[p] = true
	}
	if got, want := reduceNetworks(nets), prefixes("52.0.0.0/8", "2603:1063::/38"); !reflect.DeepEqual(got, want) {
		t.Errorf("networks %v, want %v", got, want)
	}
	names := map[string]bool{"a.teams.example": true, "teams.example": true, "b.a.teams.example": true, "lync.com": true, "xlync.com": true}
	if got, want := reduceDomains(names), []string{"lync.com", "teams.example", "xlync.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
	prs := ports("udp/3480-3481", "tcp/443", "udp/3478-3479", "tcp/80", "tcp/81-90", "tcp/85")
	if got, want := mergePorts(prs), ports("tcp/80-90", "tcp/443", "udp/3478-3481"); !slices.Equal(got, want) {
		t.Errorf("ports %v, want %v", got, want)
	}
}

// TestBuiltInSkypeIsCurrent holds the embedded default's skype class to the
// recorded list (version 2025013000): its networks are exactly those of the
// Optimize set (13.107.64.0/18 left the list before that version), and its
// names cover the Allow set's.
func TestBuiltInSkypeIsCurrent(t *testing.T) {
	cfg, err := configs.Default()
	if err != nil {
		t.Fatal(err)
	}
	skype := cfg.Apps[0]
	optimize, err := Convert(recorded(t), Options{ServiceArea: "Skype", Categories: []string{"Optimize"}})
	if err != nil {
		t.Fatal(err)
	}
	if skype.Name != "skype" || !reflect.DeepEqual(skype.Prefixes, optimize.Networks) {
		t.Errorf("built-in %s networks %v, the list's Optimize networks %v", skype.Name, skype.Prefixes, optimize.Networks)
	}
	allow, err := Convert(recorded(t), Options{ServiceArea: "Skype", Categories: []string{"Allow"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range allow.Domains {
		if !slices.Contains(skype.Domains, d) {
			t.Errorf("built-in names %v lack the list's %s", skype.Domains, d)
		}
	}
}
