package main

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestAlertRules checks configs/prometheus/alerts.yml with promtool and runs
// its unit tests (alerts_test.yml: when each alert fires and what it says),
// and checks that both Prometheus configs load it.
func TestAlertRules(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	dir := filepath.Join("..", "..", "configs", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"check", "config", "prometheus.yml"},
		{"check", "config", "prometheus-cluster.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
