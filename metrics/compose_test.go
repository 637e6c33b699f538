package metrics

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// repoRoot is the repository root as seen from this package's folder.
const repoRoot = ".."

// compose is the part of docker-compose.yml the tests read.
type compose struct {
	Services map[string]struct {
		Build       string            `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
	} `yaml:"services"`
}

// readYAML decodes the YAML file at path, relative to the repository root, into v.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// bindMounts returns the bind mounts (source starting with ./) of every service as
// source to container path.
func bindMounts(c compose) map[string]string {
	out := map[string]string{}
	for _, s := range c.Services {
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && strings.HasPrefix(parts[0], "./") {
				out[parts[0]] = parts[1]
			}
		}
	}
	return out
}

func TestComposeFile(t *testing.T) {
	var c compose
	readYAML(t, "docker-compose.yml", &c)
	s, ok := c.Services["sockshaper"]
	if !ok || s.Build != "." || !slices.Equal(s.Command, []string{"-config", "/etc/sockshaper/sockshaper.yaml", "-log-format", "json"}) ||
		!slices.Contains(s.Ports, "1080:1080") {
		t.Errorf("sockshaper service: %+v", s)
	}
	if p := c.Services["prometheus"]; !strings.HasPrefix(p.Image, "docker.io/prom/prometheus") {
		t.Errorf("prometheus image %q", p.Image)
	}
	g := c.Services["grafana"]
	if !strings.HasPrefix(g.Image, "docker.io/grafana/grafana") || g.Environment["GF_AUTH_ANONYMOUS_ENABLED"] != "false" ||
		!strings.HasPrefix(g.Environment["GF_SECURITY_ADMIN_PASSWORD"], "${GRAFANA_ADMIN_PASSWORD:-") {
		t.Errorf("grafana service: %+v", g)
	}
	mounts := bindMounts(c)
	for src, dst := range map[string]string{
		"./configs/docker.yaml":               "/etc/sockshaper/sockshaper.yaml",
		"./users.htpasswd":                    "/etc/sockshaper/users.htpasswd",
		"./configs/prometheus/prometheus.yml": "/etc/prometheus/prometheus.yml",
		"./configs/prometheus/alerts.yml":     "/etc/prometheus/alerts.yml",
		"./configs/grafana/provisioning":      "/etc/grafana/provisioning",
		"./configs/grafana/dashboards":        "/var/lib/grafana/dashboards",
	} {
		if mounts[src] != dst {
			t.Errorf("mount %s: container path %q, want %q", src, mounts[src], dst)
		}
	}
}

// TestComposeMountedFilesExist checks that every file or folder docker-compose.yml
// bind-mounts is in the repository, but the users file, which the operator creates
// so that no deployment runs on a published sample password.
func TestComposeMountedFilesExist(t *testing.T) {
	var c compose
	readYAML(t, "docker-compose.yml", &c)
	for src := range bindMounts(c) {
		if src == "./users.htpasswd" {
			continue
		}
		if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
			t.Errorf("mounted %s: %v", src, err)
		}
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		Datasources []struct{ Name, UID, Type, URL string } `yaml:"datasources"`
	}
	readYAML(t, "configs/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].UID != "prometheus" ||
		ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("datasources: %+v", ds.Datasources)
	}

	var dp struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "configs/grafana/provisioning/dashboards/sockshaper.yml", &dp)
	if len(dp.Providers) != 1 || dp.Providers[0].Type != "file" ||
		dp.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard providers: %+v", dp.Providers)
	}
}

// scrapeConfig is the part of a Prometheus scrape config the tests read.
type scrapeConfig struct {
	JobName        string `yaml:"job_name"`
	ScrapeInterval string `yaml:"scrape_interval"`
	StaticConfigs  []struct {
		Targets []string `yaml:"targets"`
	} `yaml:"static_configs"`
}

func TestPrometheusConfig(t *testing.T) {
	var pc struct {
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
	}
	readYAML(t, "configs/prometheus/prometheus.yml", &pc)
	i := slices.IndexFunc(pc.ScrapeConfigs, func(j scrapeConfig) bool { return j.JobName == "sockshaper" })
	if i < 0 || pc.ScrapeConfigs[i].ScrapeInterval != "15s" || len(pc.ScrapeConfigs[i].StaticConfigs) != 1 ||
		!slices.Equal(pc.ScrapeConfigs[i].StaticConfigs[0].Targets, []string{"sockshaper:9180"}) {
		t.Errorf("no sockshaper job scraping sockshaper:9180 every 15s: %+v", pc.ScrapeConfigs)
	}

	for _, f := range []string{"configs/prometheus/prometheus.yml", "configs/prometheus/prometheus-cluster.yml"} {
		out, err := exec.CommandContext(t.Context(), promtool(t), "check", "config", filepath.Join(repoRoot, f)).CombinedOutput()
		if err != nil {
			t.Errorf("promtool check config %s: %v\n%s", f, err, out)
		}
	}
	var cluster struct {
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
	}
	readYAML(t, "configs/prometheus/prometheus-cluster.yml", &cluster)
	if len(cluster.ScrapeConfigs) != 1 || len(cluster.ScrapeConfigs[0].StaticConfigs) != 1 ||
		len(cluster.ScrapeConfigs[0].StaticConfigs[0].Targets) < 2 {
		t.Errorf("the cluster example does not scrape several instances: %+v", cluster.ScrapeConfigs)
	}
}
