package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxAppsFile is the largest apps file [LoadAppsFile] reads, 8 MiB: far above
// any list of rules worth scanning for every session.
const MaxAppsFile = 8 << 20

// AppsFile is a file of app class rules kept apart from the config (the
// top-level apps_file key), so that a tool can rewrite it from a published list
// while the operator's config stays as written: `sockshaper apps update-m365`
// writes one from Microsoft's endpoints web service. It carries match rules only
// (domains, networks, ports); a class's any_address_ports, dscp and
// dscp_to_client are the config's.
type AppsFile struct {
	// Source says where the rules came from and when.
	Source AppsSource `yaml:"source"`
	// Apps are the classes, as under the config's apps key.
	Apps AppClasses `yaml:"apps"`
}

// AppsSource is an apps file's header.
type AppsSource struct {
	// URL is where the rules were read, such as
	// https://endpoints.office.com/endpoints/Worldwide?ServiceAreas=Skype.
	URL string `yaml:"url"`
	// Instance is the service instance, such as Worldwide.
	Instance string `yaml:"instance"`
	// Version is the list's version as the service reports it (yyyymmddnn).
	Version string `yaml:"version"`
	// Generated is when the file was written, RFC 3339. Required: check-config
	// warns when it is more than 45 days ago.
	Generated string `yaml:"generated"`
	// Categories are the endpoint categories the rules come from.
	Categories []string `yaml:"categories"`
	// EndpointSets are the IDs of the endpoint sets the rules come from.
	EndpointSets []int64 `yaml:"endpoint_sets"`

	// GeneratedTime is Generated parsed, filled by [LoadAppsFile].
	GeneratedTime time.Time `yaml:"-"`
	// Path is the file the header was read from, filled by [LoadAppsFile].
	Path string `yaml:"-"`
}

// LoadAppsFile reads and checks the apps file at path: YAML of the shape of
// [AppsFile], unknown keys refused, every class checked as a config's classes
// are, and source.generated a time. Errors are *[FieldError]s naming path, line
// and field, joined with [errors.Join], or a read error wrapped with the path.
func LoadAppsFile(path string) (*AppsFile, error) {
	data, err := readBounded(path, MaxAppsFile)
	if err != nil {
		return nil, err
	}
	return ParseAppsFile(data, path)
}

// ParseAppsFile is [LoadAppsFile] of data already read; path names it in errors
// and in the header's Path.
func ParseAppsFile(data []byte, path string) (*AppsFile, error) {
	doc, err := parseDocument(data, path)
	if err != nil {
		return nil, err
	}
	if errs := doc.checkShapeOf(reflect.TypeFor[AppsFile]()); len(errs) > 0 {
		sortByLine(errs)
		return nil, errors.Join(errs...)
	}
	var f AppsFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, errors.Join(yamlErrors(path, err)...)
	}
	if errs := validateAppsFile(&f, doc); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	f.Source.Path = path
	return &f, nil
}

// readBounded reads the file at path, refusing one larger than limit.
func readBounded(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read apps file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read apps file %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("read apps file %s: larger than %d MiB", path, limit>>20)
	}
	return data, nil
}

func validateAppsFile(f *AppsFile, doc *document) []error {
	v := &validator{doc: doc}
	p := path("source", "generated")
	if t, err := time.Parse(time.RFC3339, f.Source.Generated); err != nil {
		v.add(p, err, fmt.Sprintf("%q is not a time such as 2026-08-20T03:00:00Z (RFC 3339)", f.Source.Generated))
	} else {
		f.Source.GeneratedTime = t
	}
	if len(f.Apps) == 0 {
		v.add(path("apps"), nil, "holds no class")
	}
	v.apps(f.Apps)
	for _, c := range f.Apps {
		cp := path("apps", c.Name)
		for _, kept := range []struct {
			key string
			set bool
		}{{"any_address_ports", len(c.AnyAddressPorts) > 0}, {"dscp", c.DSCP != 0}, {"dscp_to_client", c.DSCPToClient}} {
			if kept.set {
				v.add(cp.key(kept.key), nil, "belongs on the class in the config: an apps file holds domains, networks and ports")
			}
		}
	}
	sortByLine(v.errs)
	return v.errs
}

// includeApps reads the config's apps file, if it has one, and merges its
// classes into c.Apps (see [Config.AppsFile]). dir is the config file's folder,
// against which a relative apps_file is resolved. A file that cannot be read is
// a problem of the config's apps_file key; a file with bad content reports its
// own lines.
func includeApps(c *Config, doc *document, dir string) []error {
	if c.AppsFile == "" {
		return nil
	}
	p := c.AppsFile
	if !filepath.IsAbs(p) {
		abs, err := filepath.Abs(filepath.Join(dir, p))
		if err != nil {
			return []error{&FieldError{File: c.Source, Line: doc.line(path("apps_file")), Field: "apps_file", Problem: err.Error(), Err: err}}
		}
		p = abs
	}
	c.AppsFile = p
	f, err := LoadAppsFile(p)
	var fe *FieldError
	switch {
	case err != nil && !errors.As(err, &fe):
		return []error{&FieldError{File: c.Source, Line: doc.line(path("apps_file")), Field: "apps_file", Problem: err.Error(), Err: err}}
	case err != nil:
		return []error{err}
	}
	c.Apps = mergeApps(c.Apps, f.Apps)
	c.AppsSource = &f.Source
	return nil
}

// mergeApps returns base with the classes of file merged in: a class of base
// with the name of one in file keeps its place in the order, its
// any_address_ports, dscp and dscp_to_client, and takes file's domains,
// networks and ports in place of its own; a class base lacks is added after
// base's classes. The result is new; neither argument is changed.
func mergeApps(base, file AppClasses) AppClasses {
	out := make(AppClasses, len(base), len(base)+len(file))
	copy(out, base)
	for _, fc := range file {
		i := indexOfClass(out, fc.Name)
		if i < 0 {
			out = append(out, fc)
			continue
		}
		out[i].Domains, out[i].Networks, out[i].Ports = fc.Domains, fc.Networks, fc.Ports
		out[i].Prefixes = nil // parsed again by validation
	}
	return out
}

func indexOfClass(classes AppClasses, name string) int {
	for i, c := range classes {
		if c.Name == name {
			return i
		}
	}
	return -1
}
