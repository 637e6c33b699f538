package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const unitPath = "deploy/systemd/sockshaper.service"

// maxExposure is the most systemd-analyze's exposure score may say of the unit: the
// issue asked for 2.0 or less (a hardened reference unit scores 1.2 here).
const maxExposure = 2.0

// TestSystemdUnitExposure scores the unit's hardening with systemd's own analysis.
func TestSystemdUnitExposure(t *testing.T) {
	tool := requireTool(t, "systemd-analyze", "apt-get install systemd")
	out, _ := tryTool("", tool, "security", "--offline=yes", filepath.Join(repoRoot, unitPath))
	m := regexp.MustCompile(`Overall exposure level for sockshaper\.service: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil || score > maxExposure {
		t.Errorf("exposure %s, want at most %.1f:\n%s", m[1], maxExposure, out)
	}
	t.Logf("systemd-analyze security --offline=yes: exposure %s", m[1])
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit inside a root that
// has the system's units and the executables the unit names, so the unit is checked
// as installed without installing anything. A broken copy must fail, or the check
// proves nothing.
func TestSystemdUnitVerifies(t *testing.T) {
	tool := requireTool(t, "systemd-analyze", "apt-get install systemd")
	unit := readRepoFile(t, unitPath)
	for _, want := range []string{"Type=notify\n", "ExecReload=/bin/kill -HUP $MAINPID\n", "User=sockshaper\n", "StateDirectory=sockshaper\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	if out, err := tryTool("", tool, "verify", "--root="+verifyRoot(t, unit), "sockshaper.service"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	broken := strings.Replace(unit, "Type=notify", "Type=notifi", 1)
	if out, err := tryTool("", tool, "verify", "--root="+verifyRoot(t, broken), "sockshaper.service"); err == nil && !strings.Contains(out, "notifi") {
		t.Errorf("a unit with Type=notifi passed verify:\n%s", out)
	}
}

// verifyRoot builds a root for systemd-analyze verify --root: the host's system
// units, the unit under test, and stand-in executables at the paths it runs.
func verifyRoot(t *testing.T, unit string) string {
	root := t.TempDir()
	mkdir(t, filepath.Join(root, "etc/systemd/system"), 0o755)
	mkdir(t, filepath.Join(root, "usr/lib/systemd"), 0o755)
	runTool(t, "", "cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/"))
	write(t, filepath.Join(root, "etc/systemd/system/sockshaper.service"), unit, 0o644)
	for _, m := range regexp.MustCompile(`(?m)^Exec\w+=[-@:+!]*(/\S+)`).FindAllStringSubmatch(unit, -1) {
		path := filepath.Join(root, m[1])
		mkdir(t, filepath.Dir(path), 0o755)
		write(t, path, "#!/bin/sh\n", 0o755)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/sockshaper")); err != nil {
		t.Fatalf("the unit runs no /usr/bin/sockshaper: %v", err)
	}
	return root
}
