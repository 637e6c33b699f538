package m365

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sockshaper/sockshaper/configs"
)

// FuzzConvert feeds the parser and the converter arbitrary responses. Whatever
// comes in, what comes out must be rules the config accepts as they are
// (written as an apps file and read back unchanged) and within every bound:
// names that are not public suffixes, public networks no broader than /8 or
// /16 and none inside another, merged valid ports, and only sets of the
// requested area and categories.
func FuzzConvert(f *testing.F) {
	for _, name := range []string{"testdata/endpoints-worldwide-skype.json", "testdata/version-worldwide.json"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`[{"id":11,"serviceArea":"Skype","ips":["52.112.0.0/14","52.113.0.0/16"],"udpPorts":"3478-3481","category":"Optimize"}]`))
	f.Add([]byte(`[{"id":12,"serviceArea":"Skype","urls":["*.teams.microsoft.com","x.teams.microsoft.com","*.co.uk"],"tcpPorts":"443,80,0-99999","category":"Allow"}]`))
	f.Add([]byte(`[{"id":1,"serviceArea":"Skype","ips":["::ffff:52.112.0.0/110","2603:1063::/38"],"category":"allow"}] `))
	f.Add([]byte(`[] []`))
	f.Add([]byte(`[{"id":1e99}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sets, err := ParseEndpoints(data)
		if err != nil {
			return
		}
		r, err := Convert(sets, Options{ServiceArea: "Skype", Categories: []string{"Optimize", "Allow"}})
		if err != nil {
			return
		}
		checkRules(t, r, sets)
		checkAccepted(t, r)
	})
}

func checkRules(t *testing.T, r Result, sets []EndpointSet) {
	if len(r.Domains) > MaxDomains || len(r.Networks) > MaxNetworks || len(r.Domains)+len(r.Networks) == 0 {
		t.Fatalf("%d names, %d networks", len(r.Domains), len(r.Networks))
	}
	names := setOf(r.Domains)
	for _, d := range r.Domains {
		if strings.ContainsAny(d, "*/: ") || !strings.Contains(d, ".") || underAnother(d, names) {
			t.Errorf("name %q", d)
		}
	}
	special := specialPrefixes()
	for i, p := range r.Networks {
		if p != p.Masked() || (p.Addr().Is4() && p.Bits() < minBits4) || (p.Addr().Is6() && p.Bits() < minBits6) || p.Addr().Is4In6() {
			t.Errorf("network %v", p)
		}
		if slices.ContainsFunc(special, p.Overlaps) {
			t.Errorf("network %v reaches a special-purpose range", p)
		}
		if i > 0 && r.Networks[i-1].Contains(p.Addr()) {
			t.Errorf("network %v is inside %v", p, r.Networks[i-1])
		}
	}
	for i, pr := range r.Ports {
		if pr.First == 0 || pr.First > pr.Last || (pr.Transport != "tcp" && pr.Transport != "udp") {
			t.Errorf("port range %v", pr)
		}
		if prev := r.Ports[max(i-1, 0)]; i > 0 && prev.Transport == pr.Transport && int(prev.Last)+1 >= int(pr.First) {
			t.Errorf("port ranges %v and %v not merged", prev, pr)
		}
	}
	for _, id := range r.Sets {
		if !slices.ContainsFunc(sets, func(s EndpointSet) bool {
			c := canonicalCategory(s.Category)
			return s.ID == id && strings.EqualFold(s.ServiceArea, "Skype") && (c == "Optimize" || c == "Allow")
		}) {
			t.Errorf("set %d is not a Skype set of the input", id)
		}
	}
}

// checkAccepted writes the rules as an apps file and reads them back through
// the config's own checks.
func checkAccepted(t *testing.T, r Result) {
	class := configs.AppClass{Name: "skype", Domains: r.Domains, Ports: r.Ports}
	for _, p := range r.Networks {
		class.Networks = append(class.Networks, p.String())
	}
	file := configs.AppsFile{Source: configs.AppsSource{Generated: "2026-08-20T03:00:00Z", EndpointSets: r.Sets}, Apps: configs.AppClasses{class}}
	data, err := file.Marshal("fuzz")
	if err != nil {
		t.Fatal(err)
	}
	back, err := configs.ParseAppsFile(data, "fuzz.yaml")
	if err != nil {
		t.Fatalf("the config refuses converted rules: %v\n%s", err, data)
	}
	got := back.Apps[0]
	if !reflect.DeepEqual(got.Domains, class.Domains) || !reflect.DeepEqual(got.Networks, class.Networks) ||
		!slices.Equal(got.Ports, class.Ports) {
		t.Errorf("read back %+v, wrote %+v", got, class)
	}
	for i, p := range got.Prefixes {
		if p != r.Networks[i] {
			t.Errorf("network %v read back as %v", r.Networks[i], p)
		}
	}
}

func setOf(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

func FuzzParseVersion(f *testing.F) {
	f.Add([]byte(`{"instance":"Worldwide","latest":"2025013000"}`))
	f.Add([]byte(`{"instance":"worldwide","latest":"20250130000"}`))
	f.Add([]byte(`[{"instance":"Worldwide","latest":"2025013000"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseVersion(data, "Worldwide")
		if err != nil {
			return
		}
		if v.Instance != "Worldwide" || len(v.Latest) != 10 || strings.Trim(v.Latest, "0123456789") != "" {
			t.Errorf("accepted %+v", v)
		}
	})
}
