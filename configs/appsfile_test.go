package configs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadAppsFile(t *testing.T) {
	f, err := LoadAppsFile("testdata/appsfile/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := f.Source
	if s.Version != "2025013000" || s.Instance != "Worldwide" || !s.GeneratedTime.Equal(time.Date(2026, 8, 20, 3, 0, 0, 0, time.UTC)) ||
		!reflect.DeepEqual(s.EndpointSets, []int64{11, 12}) || s.Path != "testdata/appsfile/good.yaml" {
		t.Errorf("source %+v", s)
	}
	if len(f.Apps) != 2 || f.Apps[0].Name != "skype" || f.Apps[1].Name != "teams_events" {
		t.Fatalf("classes %+v", f.Apps)
	}
	if got := f.Apps[0].Ports; len(got) != 3 || got[2] != (PortRange{Transport: "udp", First: 3478, Last: 3481}) {
		t.Errorf("ports %v", got)
	}
	if got := len(f.Apps[0].Prefixes); got != 3 {
		t.Errorf("%d prefixes parsed, want 3", got)
	}
}

// TestAppsFileRoundTrip writes a file with Marshal and reads it back: the
// writer and the reader agree on every field, and a version of ten digits
// stays a string.
func TestAppsFileRoundTrip(t *testing.T) {
	want, err := LoadAppsFile("testdata/appsfile/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := want.Marshal("Written by a test.\nSecond line.")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# Written by a test.\n# Second line.\n") || !strings.Contains(string(data), `version: "2025013000"`) {
		t.Errorf("marshalled:\n%s", data)
	}
	path := filepath.Join(t.TempDir(), "m365.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadAppsFile(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	got.Source.Path = want.Source.Path
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %+v\nwant %+v", got, want)
	}
}

func TestAppsFileErrors(t *testing.T) {
	for file, want := range map[string]string{
		"bad-values.yaml": `testdata/appsfile/bad-values.yaml:4: apps.skype.networks[1]: "52.112.0.0/33" is not a CIDR or IP address: prefix length out of range
testdata/appsfile/bad-values.yaml:4: apps.skype.networks[2]: "not a network" is not a CIDR or IP address: unable to parse IP
testdata/appsfile/bad-values.yaml:5: apps.skype.domains[1]: "-x-.example" is not a valid domain name: label "-x-" is not 1 to 63 letters, digits, "-" or "_" with no "-" at either end`,
		"bad-unknown-key.yaml": `testdata/appsfile/bad-unknown-key.yaml:1: source.versoin: unknown field; known fields are url, instance, version, generated, categories, endpoint_sets
testdata/appsfile/bad-unknown-key.yaml:3: apps.skype.port: unknown field; known fields are domains, networks, ports, any_address_ports, dscp, dscp_to_client`,
		"bad-no-generated.yaml": `testdata/appsfile/bad-no-generated.yaml:1: source.generated: "" is not a time such as 2026-08-20T03:00:00Z (RFC 3339)`,
		"bad-generated.yaml":    `testdata/appsfile/bad-generated.yaml:1: source.generated: "last tuesday" is not a time such as 2026-08-20T03:00:00Z (RFC 3339)`,
		"bad-config-keys.yaml": `testdata/appsfile/bad-config-keys.yaml:5: apps.skype.any_address_ports: belongs on the class in the config: an apps file holds domains, networks and ports
testdata/appsfile/bad-config-keys.yaml:6: apps.skype.dscp: belongs on the class in the config: an apps file holds domains, networks and ports
testdata/appsfile/bad-config-keys.yaml:7: apps.skype.dscp_to_client: belongs on the class in the config: an apps file holds domains, networks and ports`,
		"bad-no-class.yaml":      `testdata/appsfile/bad-no-class.yaml:2: apps: holds no class`,
		"bad-two-documents.yaml": `testdata/appsfile/bad-two-documents.yaml:4: a second YAML document starts here; a config is one document`,
		"bad-class.yaml": `testdata/appsfile/bad-class.yaml:3: apps.skype: needs at least one of domains, networks or any_address_ports
testdata/appsfile/bad-class.yaml:4: apps.Other: class name must be lowercase letters, digits, "_" and "-"`,
	} {
		t.Run(file, func(t *testing.T) {
			_, err := LoadAppsFile("testdata/appsfile/" + file)
			if err == nil || err.Error() != want {
				t.Errorf("got  %v\nwant %s", err, want)
			}
			var fe *FieldError
			if err != nil && !errors.As(err, &fe) {
				t.Errorf("%T is not a FieldError", err)
			}
		})
	}
	files, _ := filepath.Glob("testdata/appsfile/bad-*.yaml")
	if len(files) != 8 {
		t.Errorf("%d bad files, the table has 8", len(files))
	}
}

func TestAppsFileBounds(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("#"+strings.Repeat("x", MaxAppsFile)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAppsFile(big); err == nil || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Errorf("a file over 8 MiB: %v", err)
	}
	if _, err := LoadAppsFile(filepath.Join(dir, "absent.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}
