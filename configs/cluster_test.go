package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClusterSection: cluster.name defaults to the host name and is kept when
// given; a URL naming an ACL user without a password is accepted (the password
// comes from redis_password_file, made absolute against the config's folder);
// without cluster.redis nothing is derived.
func TestClusterSection(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Skipf("no host name to default to: %v", err)
	}
	dir := t.TempDir()
	load := func(cluster string) *Config {
		t.Helper()
		path := filepath.Join(dir, "sockshaper.yaml")
		if err := os.WriteFile(path, []byte("cluster:\n"+cluster), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			t.Fatalf("cluster:\n%s: %v", cluster, err)
		}
		return cfg
	}
	if c := load(`  redis: "redis://10.0.0.20:6379/0"` + "\n").Cluster; c.Name != host {
		t.Errorf("cluster.name without a value: %q, want the host name %q", c.Name, host)
	}
	c := load(`  redis: "rediss://sockshaper@10.0.0.20:6380/0"
  redis_password_file: "redis.secret"
  name: "` + strings.Repeat("a", maxClusterName) + `"
`).Cluster
	if len(c.Name) != maxClusterName || c.RedisPasswordFile != filepath.Join(dir, "redis.secret") {
		t.Errorf("cluster: %+v, want the name kept and the password file absolute in %s", c, dir)
	}
	if c := load("  name: \"\"\n").Cluster; c.Name != "" {
		t.Errorf("cluster.name without cluster.redis: %q, want nothing derived", c.Name)
	}
}
