package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// limitedConfig is baseConfig with a shaping section.
const limitedConfig = baseConfig + `
shaping:
  default_group: students
  groups: {students: {download: 16Mbit}}
`

// TestNoLimitsConfiguredIsSaid: a config without a shaping section shapes
// nothing, and check-config and the start-up log (and a reload's) say so
// plainly; the embedded default and a config with limits say what they shape.
func TestNoLimitsConfiguredIsSaid(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "users.htpasswd"), usersFile())
	for _, tc := range []struct {
		name, config string
		want         string
	}{
		{"no shaping section", baseConfig, "shaping: no limits configured: traffic is not shaped ("},
		{"with limits", limitedConfig, `shaping: 1 groups, default group "students", 0 app limits`},
		{"embedded default", "", `shaping: 2 groups, default group "students", 1 app limits`},
	} {
		args := []string{"check-config"}
		if tc.config != "" {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			writeFile(t, path, tc.config)
			args = append(args, path)
		}
		stdout, stderr, code := runSplit(t, args...)
		if code != 0 || !strings.Contains(stdout, tc.want+"") {
			t.Errorf("check-config, %s: exit %d, stdout %q (stderr %q); want %q", tc.name, code, stdout, stderr, tc.want)
		}
		if tc.config != baseConfig && strings.Contains(stdout, noLimits) {
			t.Errorf("check-config, %s: says %q", tc.name, noLimits)
		}
	}

	d := startDaemon(t, baseConfig, usersFile())
	if recs := d.records(noLimits); len(recs) != 1 || recs[0]["level"] != "WARN" || recs[0]["hint"] == nil {
		t.Errorf("start-up without limits: %v, want one warning %q with a hint", recs, noLimits)
	}
	writeFile(t, filepath.Join(d.dir, "sockshaper.yaml"), limitedConfig)
	d.signal(syscall.SIGHUP)
	waitForRecordCount(t, d, "shaping", 1)
	if recs := d.records("shaping"); recs[0]["default_group"] != "students" || len(d.records(noLimits)) != 1 {
		t.Errorf("reload with limits: %v; %d %q lines, want still 1", recs, len(d.records(noLimits)), noLimits)
	}
	shaped := startDaemon(t, limitedConfig, usersFile())
	if n := len(shaped.records(noLimits)); n != 0 || len(shaped.records("shaping")) != 1 {
		t.Errorf("start-up with limits: %d %q lines, %d shaping lines; want 0, 1", n, noLimits, len(shaped.records("shaping")))
	}
}
