package main

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/metrics"
)

// repoRoot is the repository root as seen from this package's folder.
const repoRoot = "../.."

// docFile is one Markdown file of the documentation: its path from the
// repository root and its text.
type docFile struct {
	path, text string
}

// readDocs returns README.md and docs/*.md, the documentation operators read.
func readDocs(t *testing.T) []docFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	paths = append([]string{filepath.Join(repoRoot, "README.md")}, paths...)
	docs := make([]docFile, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, p)
		docs = append(docs, docFile{path: filepath.ToSlash(rel), text: string(b)})
	}
	return docs
}

// allText is every documentation file's text together.
func allText(docs []docFile) string {
	var b strings.Builder
	for _, d := range docs {
		b.WriteString(d.text)
		b.WriteString("\n")
	}
	return b.String()
}

// TestDocsNameEveryCommandAndFlag: every sub-command of the binary appears in
// the documentation as `sockshaper NAME`, and each of its flags on a line that
// names the command (the command table of docs/operations.md), so that a new
// command or flag cannot ship undocumented.
func TestDocsNameEveryCommandAndFlag(t *testing.T) {
	docs := readDocs(t)
	for _, problem := range undocumentedCommands(commands(), allText(docs)) {
		t.Error(problem)
	}
}

// undocumentedCommands returns a problem for each command of cmds, and each
// flag of one, that text does not document.
func undocumentedCommands(cmds []command, text string) []string {
	var problems []string
	lines := strings.Split(text, "\n")
	for _, c := range cmds {
		name := "sockshaper " + c.name
		var naming []string
		for _, l := range lines {
			if regexp.MustCompile(regexp.QuoteMeta(name) + `\b`).MatchString(l) {
				naming = append(naming, l)
			}
		}
		if len(naming) == 0 {
			problems = append(problems, "no document names the command `"+name+"`")
			continue
		}
		c.flagSet(&options{}).VisitAll(func(f *flag.Flag) {
			re := regexp.MustCompile(`(^|[^\w-])-` + regexp.QuoteMeta(f.Name) + `\b`)
			if !slices.ContainsFunc(naming, re.MatchString) {
				problems = append(problems, "no line naming `"+name+"` documents its flag -"+f.Name)
			}
		})
	}
	return problems
}

// TestDocsNameEveryConfigKey: every key of the config, nested ones included
// (map keys written as *, such as shaping.groups.*.upload), appears in the
// documentation in backquotes as its full path. A key added to the config
// structs and not to docs/configuration.md fails here, naming it.
func TestDocsNameEveryConfigKey(t *testing.T) {
	keys := configKeys(reflect.TypeFor[configs.Config](), "")
	if len(keys) < 100 || !slices.Contains(keys, "auth.ldap.url") || !slices.Contains(keys, "shaping.groups.*.quota.over_rate") {
		t.Fatalf("the walk of the config found %d keys, without auth.ldap.url or shaping.groups.*.quota.over_rate: %v", len(keys), keys)
	}
	text := allText(readDocs(t))
	for _, k := range keys {
		if refusedKey(k) == "" && !strings.Contains(text, "`"+k+"`") {
			t.Errorf("no document names the config key `%s`", k)
		}
	}
}

// refusedKeys are paths the config structs have (a type shared between
// sections) but validation refuses, each with a config that sets one: quotas
// and window limits belong to groups, not to app classes or the global
// limit. They are not documented as keys; TestDocsRefusedKeysAreRefused keeps
// the list honest.
var refusedKeys = map[string]string{
	"shaping.apps.*.per_user.quota":  "shaping: {apps: {skype: {per_user: {quota: {daily: 1GiB}}}}}",
	"shaping.apps.*.per_user.during": "shaping: {windows: {w: {hours: \"08:00-18:00\"}}, apps: {skype: {per_user: {during: {w: {download: 1Mbit}}}}}}",
	"shaping.apps.*.total.quota":     "shaping: {apps: {skype: {total: {quota: {daily: 1GiB}}}}}",
	"shaping.apps.*.total.during":    "shaping: {windows: {w: {hours: \"08:00-18:00\"}}, apps: {skype: {total: {during: {w: {download: 1Mbit}}}}}}",
	"shaping.global.quota":           "shaping: {global: {quota: {daily: 1GiB}}}",
	"shaping.global.during":          "shaping: {windows: {w: {hours: \"08:00-18:00\"}}, global: {during: {w: {download: 1Mbit}}}}",
}

// refusedKey returns the entry of refusedKeys that key is, or is under; "" if none.
func refusedKey(key string) string {
	for prefix := range refusedKeys {
		if key == prefix || strings.HasPrefix(key, prefix+".") {
			return prefix
		}
	}
	return ""
}

// TestDocsRefusedKeysAreRefused: each key the docs test leaves out because
// validation refuses it is indeed refused, naming the key, and exists in the
// structs (else the entry is stale).
func TestDocsRefusedKeysAreRefused(t *testing.T) {
	keys := configKeys(reflect.TypeFor[configs.Config](), "")
	for prefix, yaml := range refusedKeys {
		if !slices.ContainsFunc(keys, func(k string) bool { return refusedKey(k) == prefix }) {
			t.Errorf("%s: no config key under it any more; drop it from refusedKeys", prefix)
		}
		_, err := configs.Parse([]byte(yaml), "refused.yaml")
		last := prefix[strings.LastIndex(prefix, ".")+1:]
		if err == nil || !strings.Contains(err.Error(), "."+last) {
			t.Errorf("%s: %q loads (error %v); document the key and drop it from refusedKeys", prefix, yaml, err)
		}
	}
}

// configKeys returns the YAML paths of every key under typ, prefix first: a
// struct's yaml-tagged fields, a map's or a named list's entries as * (apps is a
// mapping of class names in YAML, a list in Go), recursing into structs with
// keys of their own. A struct without yaml tags (a port range) is a value.
func configKeys(typ reflect.Type, prefix string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Map:
		return configKeys(typ.Elem(), prefix+".*")
	case reflect.Slice:
		if hasKeys(typ.Elem()) {
			return configKeys(typ.Elem(), prefix+".*")
		}
		return nil
	case reflect.Struct:
	default:
		return nil
	}
	var keys []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := strings.TrimPrefix(prefix+"."+name, ".")
		if sub := configKeys(f.Type, path); len(sub) > 0 {
			keys = append(keys, sub...)
			continue
		}
		keys = append(keys, path)
	}
	return keys
}

// hasKeys reports whether typ (or what it points to) is a struct with YAML keys.
func hasKeys(typ reflect.Type) bool {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct {
		return false
	}
	for f := range typ.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
			return true
		}
	}
	return false
}

// TestDocsNameEveryMetric: every sockshaper_ metric the daemon can export
// appears in the documentation under its full name.
func TestDocsNameEveryMetric(t *testing.T) {
	names := metricNames(t)
	if len(names) < 30 {
		t.Fatalf("found only %d metrics: %v", len(names), names)
	}
	text := allText(readDocs(t))
	for _, n := range names {
		if !regexp.MustCompile(regexp.QuoteMeta(n) + `\b`).MatchString(text) {
			t.Errorf("no document names the metric %s", n)
		}
	}
}

// metricNames returns the names of every sockshaper_ metric: those metrics.New
// registers (per-user series on, a certificate loaded), the build info and the
// usage state's.
func metricNames(t *testing.T) []string {
	rec := &describer{}
	m := metrics.New(rec, metrics.Options{PerUser: true})
	m.TLSCertificateLoaded(time.Now())
	rec.MustRegister(metrics.NewBuildInfo(metrics.BuildInfo{}),
		metrics.NewUsageStateCollector(func() metrics.UsageState { return metrics.UsageState{} }))
	fq := regexp.MustCompile(`fqName: "(sockshaper_\w+)"`)
	var names []string
	for _, d := range rec.descs {
		if m := fq.FindStringSubmatch(d.String()); m != nil && !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	slices.Sort(names)
	return names
}

// describer is a prometheus.Registerer that keeps the descriptors of what is
// registered on it.
type describer struct{ descs []*prometheus.Desc }

func (r *describer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.descs = append(r.descs, d)
	}
	return nil
}

func (r *describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		r.Register(c)
	}
}

func (r *describer) Unregister(prometheus.Collector) bool { return true }
