package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/sockshaper/sockshaper/configs"
)

// TestDeploymentGuideConfigs checks the configs docs/deployment.md gives
// operators: HAProxy's with `haproxy -c`, the instance's with the config loader.
func TestDeploymentGuideConfigs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	haproxy := regexp.MustCompile("(?s)## HAProxy\n\n```\n(.*?)```").FindSubmatch(doc)
	instance := regexp.MustCompile("(?s)## The instances\n\n.*?```yaml\n(.*?)```").FindSubmatch(doc)
	if haproxy == nil || instance == nil {
		t.Fatal("docs/deployment.md lost its HAProxy or instance config block")
	}
	bin := requireTool(t, "haproxy", "haproxy")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "haproxy.cfg"), string(haproxy[1]))
	if out, err := exec.Command(bin, "-c", "-f", filepath.Join(dir, "haproxy.cfg")).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c on the guide's config: %v\n%s", err, out)
	}
	writeFile(t, filepath.Join(dir, "sockshaper.yaml"), string(instance[1]))
	if _, err := configs.Load(filepath.Join(dir, "sockshaper.yaml")); err != nil {
		t.Errorf("the guide's instance config: %v", err)
	}
}
