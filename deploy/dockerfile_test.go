package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	op   string // upper case: FROM, RUN, USER...
	args string
}

// parseDockerfile splits a Dockerfile into instructions, dropping comments.
func parseDockerfile(text string) []instruction {
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if s, cont := strings.CutSuffix(trimmed, "\\"); cont {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		op, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{op: strings.ToUpper(op), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// qualified reports whether an image reference names its registry, as daemonless
// builders need: the first path part is a host (has a dot or a port, or is
// localhost).
func qualified(ref string) bool {
	host, _, ok := strings.Cut(ref, "/")
	return ok && (strings.ContainsAny(host, ".:") || host == "localhost")
}

// TestDockerfileRules checks what must hold of the Dockerfile whatever the builder:
// fully qualified bases, a static build, a non-root numeric user, a HEALTHCHECK that
// uses the binary (no shell in the image), exec-form entrypoint.
func TestDockerfileRules(t *testing.T) {
	ins := parseDockerfile(readRepoFile(t, "Dockerfile"))
	var stages []string
	var last []instruction // instructions of the final stage
	for _, in := range ins {
		if in.op != "FROM" {
			last = append(last, in)
			continue
		}
		f := strings.Fields(in.args)
		if !slices.Contains(stages, f[0]) && !qualified(f[0]) {
			t.Errorf("FROM %s: not fully qualified (registry/name:tag)", f[0])
		}
		if len(f) == 3 && strings.EqualFold(f[1], "AS") {
			stages = append(stages, f[2])
		}
		last = nil
	}
	if len(stages) == 0 {
		t.Error("no named build stage: the runtime image should not carry the toolchain")
	}
	var build bool
	for _, in := range ins {
		if in.op == "RUN" && strings.Contains(in.args, "go build") {
			build = strings.Contains(in.args, "CGO_ENABLED=0") && strings.Contains(in.args, "-trimpath")
		}
	}
	if !build {
		t.Error("go build without CGO_ENABLED=0 and -trimpath: the runtime image has no libc")
	}
	got := map[string]string{}
	for _, in := range last {
		got[in.op] = in.args
	}
	if u := got["USER"]; !regexp.MustCompile(`^[1-9][0-9]*(:[0-9]+)?$`).MatchString(u) {
		t.Errorf("final USER %q: want a numeric non-root uid (Kubernetes runAsNonRoot checks it)", u)
	}
	if hc := got["HEALTHCHECK"]; !regexp.MustCompile(`CMD \["/usr/local/bin/sockshaper", "healthcheck"`).MatchString(hc) {
		t.Errorf("HEALTHCHECK %q: want the exec form of sockshaper healthcheck", hc)
	}
	if ep := got["ENTRYPOINT"]; ep != `["/usr/local/bin/sockshaper"]` {
		t.Errorf("ENTRYPOINT %q", ep)
	}
}

func TestDockerignore(t *testing.T) {
	lines := strings.Split(readRepoFile(t, ".dockerignore"), "\n")
	for _, want := range []string{".git", "**/*.htpasswd", "/dist", "/bin", "/sockshaper"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore lacks %q", want)
		}
	}
}

// composeSpec runs the Compose Specification's reference loader (compose-go) on a
// compose file: it validates against the specification's JSON schema and prints the
// normalised model, which the test then reads.
func composeSpec(t *testing.T, dir, file string) (map[string]any, string, error) {
	tool := requireTool(t, "compose-spec", "go install github.com/compose-spec/compose-go/v2/cmd@v2.16.2 (as compose-spec)")
	cmd := []string{"-format", "json", file}
	out, err := tryToolIn(dir, tool, cmd...)
	if err != nil {
		return nil, out, err
	}
	var model map[string]any
	if err := json.Unmarshal([]byte(out), &model); err != nil {
		t.Fatalf("compose-spec output: %v\n%s", err, out)
	}
	return model, out, nil
}

func TestComposeFileFollowsSpecification(t *testing.T) {
	model, out, err := composeSpec(t, repoRoot, "docker-compose.yml")
	if err != nil {
		t.Fatalf("docker-compose.yml: %v\n%s", err, out)
	}
	s := model["services"].(map[string]any)["sockshaper"].(map[string]any)
	hc, _ := json.Marshal(s["healthcheck"])
	if !strings.Contains(string(hc), `"test":["CMD","/usr/local/bin/sockshaper","healthcheck","-config","/etc/sockshaper/sockshaper.yaml"]`) {
		t.Errorf("sockshaper healthcheck: %s", hc)
	}
	logging, _ := json.Marshal(s["logging"])
	command, _ := json.Marshal(s["command"])
	if !strings.Contains(string(logging), `"driver":"json-file"`) || !strings.Contains(string(command), `"-log-format","json"`) {
		t.Errorf("logs: logging %s, command %s; want JSON lines in the json-file driver", logging, command)
	}
	dep, _ := json.Marshal(model["services"].(map[string]any)["prometheus"].(map[string]any)["depends_on"])
	if !strings.Contains(string(dep), `"sockshaper":{"condition":"service_healthy"`) {
		t.Errorf("prometheus depends_on: %s", dep)
	}

	// The loader refuses what the specification does not know, so the check above
	// can fail: a misspelt healthcheck key.
	dir := t.TempDir()
	bad := strings.Replace(readRepoFile(t, "docker-compose.yml"), "start_period:", "start_periode:", 1)
	if err := os.WriteFile(filepath.Join(dir, "compose.yml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, out, err := composeSpec(t, dir, "compose.yml"); err == nil || !strings.Contains(out, "start_periode") {
		t.Errorf("misspelt key accepted: %v\n%s", err, out)
	}
}
