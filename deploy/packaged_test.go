package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sockshaper/sockshaper/configs"
)

// TestPackagedConfigDeniesDefaultClasses: the config the .deb installs refuses
// the same destination classes as the embedded default, so that installing the
// package is no less careful than `go run ./cmd/sockshaper`.
func TestPackagedConfigDeniesDefaultClasses(t *testing.T) {
	packaged, err := configs.Load(filepath.Join(repoRoot, "deploy/sockshaper.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	def, err := configs.Default()
	if err != nil {
		t.Fatal(err)
	}
	if problem := sameClasses(packaged.Access.DenyDestinations, def.Access.DenyDestinations); problem != "" {
		t.Error("deploy/sockshaper.yaml's access.deny_destinations: " + problem)
	}
}

// sameClasses returns "" when got names the classes of want, in any order, or
// what differs.
func sameClasses(got, want []string) string {
	var missing, extra []string
	for _, c := range want {
		if !slices.Contains(got, c) {
			missing = append(missing, c)
		}
	}
	for _, c := range got {
		if !slices.Contains(want, c) {
			extra = append(extra, c)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "lacks "+strings.Join(missing, ", ")+" that the embedded default denies")
	}
	if len(extra) > 0 {
		parts = append(parts, "denies "+strings.Join(extra, ", ")+" that the embedded default does not")
	}
	return strings.Join(parts, "; ")
}

// TestSameClassesCatchesADifference: the comparison fails on a missing class.
func TestSameClassesCatchesADifference(t *testing.T) {
	if p := sameClasses([]string{"loopback"}, []string{"loopback", "multicast"}); !strings.Contains(p, "multicast") {
		t.Errorf("sameClasses missed multicast: %q", p)
	}
	if p := sameClasses([]string{"b", "a"}, []string{"a", "b"}); p != "" {
		t.Errorf("sameClasses of equal sets: %q", p)
	}
}

// TestSystemdUnitDescriptorLimitDocumented: the unit's LimitNOFILE is the one
// docs/operations.md advises and says the packaged unit sets.
func TestSystemdUnitDescriptorLimitDocumented(t *testing.T) {
	m := regexp.MustCompile(`(?m)^LimitNOFILE=(\d+)$`).FindStringSubmatch(readRepoFile(t, unitPath))
	if m == nil {
		t.Fatal("the unit sets no LimitNOFILE")
	}
	ops, err := os.ReadFile(filepath.Join(repoRoot, "docs/operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range regexp.MustCompile(`LimitNOFILE=(\d+)`).FindAllStringSubmatch(string(ops), -1) {
		if n[1] != m[1] {
			t.Errorf("docs/operations.md advises LimitNOFILE=%s; the unit sets %s", n[1], m[1])
		}
	}
	if !strings.Contains(string(ops), "LimitNOFILE="+m[1]) {
		t.Errorf("docs/operations.md does not name the unit's LimitNOFILE=%s", m[1])
	}
}
