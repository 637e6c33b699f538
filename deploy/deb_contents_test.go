package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// monitoringFiles are the files the package installs for Prometheus and
// Grafana (README "Install" and "Prometheus and Grafana" name these paths), each
// with the repository file it is a copy of.
var monitoringFiles = map[string]string{
	"/usr/share/sockshaper/grafana/sockshaper.json":           "configs/grafana/dashboards/sockshaper.json",
	"/usr/share/sockshaper/prometheus/prometheus.yml":         "deploy/prometheus/prometheus.yml",
	"/usr/share/sockshaper/prometheus/prometheus-cluster.yml": "configs/prometheus/prometheus-cluster.yml",
	"/usr/share/sockshaper/prometheus/alerts.yml":             "configs/prometheus/alerts.yml",
	"/usr/share/doc/sockshaper/sockshaper.example.yaml":       "configs/sockshaper.example.yaml",
	"/etc/sockshaper/sockshaper.yaml":                         "deploy/sockshaper.yaml",
	"/lib/systemd/system/sockshaper.service":                  "deploy/systemd/sockshaper.service",
}

// checkPackageMetadata checks the built package before it is installed: its
// listing (dpkg -c) holds the monitoring files, and its description (dpkg -I)
// names every front an operator looks for.
func checkPackageMetadata(t *testing.T, dpkg, deb string) {
	t.Helper()
	listing := runTool(t, "", dpkg, "-c", deb)
	for path := range monitoringFiles {
		if !strings.Contains(listing, " ."+path+"\n") {
			t.Errorf("dpkg -c: the package lacks %s", path)
		}
	}
	info := runTool(t, "", dpkg, "-I", deb)
	_, desc, ok := strings.Cut(info, " Description: ")
	if !ok {
		t.Fatalf("dpkg -I: no description:\n%s", info)
	}
	for _, want := range []string{"SOCKS5", "HTTP proxy", "HTTPS proxy", "HTTP/2", "Prometheus", "Grafana", "/usr/share/sockshaper"} {
		if !strings.Contains(desc, want) {
			t.Errorf("dpkg -I: the description does not name %q:\n%s", want, desc)
		}
	}
}

// checkInstalledMonitoring checks what the package installed for monitoring:
// each file is the repository's, readable by all, and promtool accepts the
// installed scrape config with the rules it loads from beside it.
func checkInstalledMonitoring(t *testing.T) {
	t.Helper()
	for installed, src := range monitoringFiles {
		got, err := os.ReadFile(installed)
		if err != nil {
			t.Errorf("installed: %v", err)
			continue
		}
		if want := readRepoFile(t, src); !bytes.Equal(got, []byte(want)) {
			t.Errorf("%s differs from %s", installed, src)
		}
		if filepath.Dir(installed) == "/etc/sockshaper" {
			continue
		}
		if mode := strings.TrimSpace(runTool(t, "", "stat", "-c", "%a %U", installed)); mode != "644 root" {
			t.Errorf("%s: %s, want 644 root", installed, mode)
		}
	}
	promtool := requireTool(t, "promtool", "apt-get install prometheus")
	out := runTool(t, "", promtool, "check", "config", "/usr/share/sockshaper/prometheus/prometheus.yml")
	if !strings.Contains(out, "/usr/share/sockshaper/prometheus/alerts.yml") || !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check config on the installed scrape config loaded no alert rules:\n%s", out)
	}
}
