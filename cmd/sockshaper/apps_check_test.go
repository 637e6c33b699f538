package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// writeAppsFileAt writes an apps file generated at gen into dir and a config
// naming it; it returns the config's and the apps file's paths.
func writeAppsFileAt(t *testing.T, dir string, gen time.Time) (string, string) {
	t.Helper()
	f := configs.AppsFile{
		Source: configs.AppsSource{Instance: "Worldwide", Version: "2025013000", Generated: gen.UTC().Format(time.RFC3339)},
		Apps:   configs.AppClasses{{Name: "skype", Networks: []string{"52.112.0.0/14"}}},
	}
	data, err := f.Marshal("test")
	if err != nil {
		t.Fatal(err)
	}
	apps := filepath.Join(dir, "m365-skype.yaml")
	writeFile(t, apps, string(data))
	config := filepath.Join(dir, "sockshaper.yaml")
	writeFile(t, config, "apps_file: m365-skype.yaml\n")
	return config, apps
}

// TestCheckConfigAppsFileAge drives the binary: check-config names the apps
// file and its version, and past 45 days (by the generation time recorded in
// the file) warns on standard error, still exit 0.
func TestCheckConfigAppsFileAge(t *testing.T) {
	for _, tt := range []struct {
		name string
		age  time.Duration
		warn string
	}{
		{"fresh", 10 * 24 * time.Hour, ""},
		{"old", 60*24*time.Hour + time.Hour, "is 60 days old (version 2025013000); run sockshaper apps update-m365"},
		{"future", -3 * 24 * time.Hour, "was generated in the future"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			config, apps := writeAppsFileAt(t, t.TempDir(), time.Now().Add(-tt.age))
			stdout, stderr, code := runSplit(t, "check-config", config)
			if code != 0 || !strings.Contains(stdout, "ok (") || !strings.Contains(stdout, "apps file "+apps+" (version 2025013000, generated ") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			switch {
			case tt.warn == "" && stderr != "":
				t.Errorf("unexpected warning: %s", stderr)
			case tt.warn != "" && !strings.Contains(stderr, "warning: apps file "+apps+" "+tt.warn):
				t.Errorf("stderr %q lacks %q", stderr, tt.warn)
			}
		})
	}
}

func TestCheckConfigBadAppsFile(t *testing.T) {
	dir := t.TempDir()
	config, apps := writeAppsFileAt(t, dir, time.Now())
	writeFile(t, apps, "source: {generated: \"2026-08-20T03:00:00Z\"}\napps:\n  skype: {networks: [52.112.0.0/14, 52.112.0.0/33]}\n")
	stdout, stderr, code := runSplit(t, "check-config", config)
	want := apps + `:3: apps.skype.networks[1]: "52.112.0.0/33" is not a CIDR or IP address`
	if code != 1 || !strings.Contains(stderr, want) || stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", code, stdout, stderr, want)
	}
	os.Remove(apps)
	if _, stderr, code = runSplit(t, "check-config", config); code != 1 || !strings.Contains(stderr, config+":1: apps_file: read apps file: open "+apps) {
		t.Errorf("missing apps file: exit %d, %q", code, stderr)
	}
}

// TestAppsFileNote pins the 45-day boundary with a fixed clock.
func TestAppsFileNote(t *testing.T) {
	gen := time.Date(2026, 8, 14, 0, 0, 0, 0, time.UTC)
	cfg := &configs.Config{AppsFile: "/etc/sockshaper/m365-skype.yaml",
		AppsSource: &configs.AppsSource{Version: "2026081400", Generated: gen.Format(time.RFC3339), GeneratedTime: gen}}
	for _, tt := range []struct {
		now  time.Time
		warn string
	}{
		{gen.Add(45 * 24 * time.Hour), ""},
		{gen.Add(45*24*time.Hour + time.Minute), "apps file /etc/sockshaper/m365-skype.yaml is 45 days old (version 2026081400); run sockshaper apps update-m365"},
		{gen.Add(100 * 24 * time.Hour), "is 100 days old"},
		{gen.Add(-time.Hour), ""},
		{gen.Add(-25 * time.Hour), "generated in the future (2026-08-14T00:00:00Z)"},
	} {
		note, warn := appsFileNote(cfg, tt.now)
		if note != "apps file /etc/sockshaper/m365-skype.yaml (version 2026081400, generated 2026-08-14T00:00:00Z)" {
			t.Errorf("note %q", note)
		}
		if (tt.warn == "") != (warn == "") || !strings.Contains(warn, tt.warn) {
			t.Errorf("at %v: warning %q, want %q", tt.now, warn, tt.warn)
		}
	}
	if note, warn := appsFileNote(&configs.Config{}, gen); note != "" || warn != "" {
		t.Errorf("no apps file: %q %q", note, warn)
	}
}
