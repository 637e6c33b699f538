package configs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// appsDir writes config and a copy of testdata/appsfile/good.yaml (as
// m365.yaml) into a new folder and returns the config's path.
func appsDir(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	good, err := os.ReadFile("testdata/appsfile/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"m365.yaml": good, "sockshaper.yaml": []byte(config)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "sockshaper.yaml")
}

func classNames(classes AppClasses) []string {
	var names []string
	for _, c := range classes {
		names = append(names, c.Name)
	}
	return names
}

// fileRules are the skype class's rules in testdata/appsfile/good.yaml.
func fileRules() (domains, networks []string, ports []PortRange) {
	return []string{"lync.com", "teams.cloud.microsoft", "teams.microsoft.com"},
		[]string{"52.112.0.0/14", "52.122.0.0/15", "2603:1063::/38"},
		[]PortRange{{"tcp", 80, 80}, {"tcp", 443, 443}, {"udp", 3478, 3481}}
}

// TestAppsFileReplacesBuiltIn: with no apps key, the file's skype class takes
// the built-in skype class's domains, networks and ports (13.107.64.0/18 is
// gone), the built-in's port-only rule stays, and the file's other class comes
// after it.
func TestAppsFileReplacesBuiltIn(t *testing.T) {
	path := appsDir(t, "apps_file: m365.yaml\n")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := classNames(cfg.Apps); !reflect.DeepEqual(got, []string{"skype", "teams_events"}) {
		t.Fatalf("classes %v", got)
	}
	skype := cfg.Apps[0]
	fileDomains, fileNetworks, filePorts := fileRules()
	if !reflect.DeepEqual(skype.Domains, fileDomains) || !reflect.DeepEqual(skype.Networks, fileNetworks) ||
		!reflect.DeepEqual(skype.Ports, filePorts) || len(skype.Prefixes) != 3 {
		t.Errorf("skype %+v", skype)
	}
	if want := skypeClass().AnyAddressPorts; !reflect.DeepEqual(skype.AnyAddressPorts, want) {
		t.Errorf("any_address_ports %v, want the built-in %v", skype.AnyAddressPorts, want)
	}
	if want := filepath.Join(filepath.Dir(path), "m365.yaml"); cfg.AppsFile != want || cfg.AppsSource == nil ||
		cfg.AppsSource.Version != "2025013000" || cfg.AppsSource.Path != want {
		t.Errorf("apps_file %q, source %+v", cfg.AppsFile, cfg.AppsSource)
	}
}

// TestAppsFileMergesIntoConfig: a class of the config keeps its place, dscp and
// any_address_ports and takes the file's match rules; the file's classes the
// config lacks come after the config's, where shaping.apps may name them.
func TestAppsFileMergesIntoConfig(t *testing.T) {
	cfg, err := Load(appsDir(t, `apps_file: m365.yaml
shaping:
  apps: {teams_events: {total: {download: 10Mbit}}}
apps:
  zoom: {domains: [zoom.us]}
  skype:
    networks: [13.107.64.0/18]
    ports: [tcp/8443]
    any_address_ports: [udp/3478-3479]
    dscp: EF
  campus: {networks: [192.0.2.0/24]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := classNames(cfg.Apps); !reflect.DeepEqual(got, []string{"zoom", "skype", "campus", "teams_events"}) {
		t.Fatalf("classes %v", got)
	}
	skype := cfg.Apps[1]
	fileDomains, fileNetworks, filePorts := fileRules()
	if !reflect.DeepEqual(skype.Networks, fileNetworks) || !reflect.DeepEqual(skype.Domains, fileDomains) ||
		!reflect.DeepEqual(skype.Ports, filePorts) {
		t.Errorf("skype match rules %+v, want the file's", skype)
	}
	if skype.DSCP != 46 || !reflect.DeepEqual(skype.AnyAddressPorts, []PortRange{{"udp", 3478, 3479}}) {
		t.Errorf("skype dscp %d, any_address_ports %v; want the config's", skype.DSCP, skype.AnyAddressPorts)
	}
}

func TestAppsFileProblems(t *testing.T) {
	path := appsDir(t, "listen: 127.0.0.1:1080\napps_file: absent.yaml\n")
	_, err := Load(path)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.File != path || fe.Line != 2 || fe.Field != "apps_file" || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing apps file: %v", err)
	}

	path = appsDir(t, "apps_file: m365.yaml\n")
	apps := filepath.Join(filepath.Dir(path), "m365.yaml")
	if err := os.WriteFile(apps, []byte("source: {generated: \"2026-08-20T03:00:00Z\"}\napps:\n  skype: {networks: [52.112.0.0/33]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := apps + `:3: apps.skype.networks[0]: "52.112.0.0/33" is not a CIDR or IP address: prefix length out of range`
	if _, err := Load(path); err == nil || err.Error() != want {
		t.Errorf("bad apps file:\n got %v\nwant %s", err, want)
	}
}

// TestParseLeavesAppsFile: Parse reads no file; apps_file stays as written.
func TestParseLeavesAppsFile(t *testing.T) {
	cfg, err := Parse([]byte("apps_file: nowhere/absent.yaml\n"), "p")
	if err != nil || cfg.AppsFile != "nowhere/absent.yaml" || cfg.AppsSource != nil || len(cfg.Apps) != 1 || cfg.Apps[0].Name != "skype" {
		t.Errorf("Parse: %v, %+v", err, cfg)
	}
}
