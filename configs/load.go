package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the config file at path and parses it as [Parse] does, with path as the
// source, and reads the apps file it names (apps_file, relative to the config
// file's folder) before validation, so that the config's checks see the merged
// classes. A relative auth.users_file, auth.ldap.ca_file, auth.ldap.bind_password_file,
// cluster.redis_password_file and state_dir are then made absolute against the
// config file's folder, so that a config and its files can be moved together. Load
// does not open them; the proxy reports a missing one when it loads it.
//
// Errors: a read error wrapped with the path, or the problems found, each a
// *[FieldError], joined with [errors.Join].
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	dir := filepath.Dir(path)
	cfg, err := parse(data, path, func(c *Config, doc *document) []error { return includeApps(c, doc, dir) })
	if err != nil {
		return nil, err
	}
	if err := resolvePaths(cfg, dir); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Parse decodes a YAML config onto [Defaults] and validates it. source names the
// config in errors and in Config.Source. A key the file sets replaces the default: a
// list replaces the default list, and the apps mapping replaces the default classes.
// Unknown keys are errors. auth.users_file is returned as written, and apps_file is
// neither read nor resolved ([Load] does both).
//
// When the config is not valid, Parse returns every problem it found, each a
// *[FieldError] naming source, line, field and problem, joined with [errors.Join] in
// the order of the file. Problems with the YAML itself (syntax, unknown keys, values
// of the wrong type) are reported before, and instead of, the checks of the values.
func Parse(data []byte, source string) (*Config, error) {
	return parse(data, source, nil)
}

// parse is [Parse] with include, when not nil, run between decoding and
// validation to read the files the config includes ([Load]'s apps_file).
func parse(data []byte, source string, include func(*Config, *document) []error) (*Config, error) {
	doc, err := parseDocument(data, source)
	if err != nil {
		return nil, err
	}
	if errs := doc.checkShape(); len(errs) > 0 {
		sortByLine(errs)
		return nil, errors.Join(errs...)
	}
	cfg := Defaults()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, errors.Join(yamlErrors(source, err)...)
	}
	cfg.Source = source
	if include != nil {
		if errs := include(&cfg, doc); len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	if errs := validate(&cfg, doc); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &cfg, nil
}

// parseDocument reads data as a node tree and reports YAML syntax errors, and a
// second document, which a decoder would silently ignore.
func parseDocument(data []byte, source string) (*document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); errors.Is(err, io.EOF) {
		return &document{file: source}, nil
	} else if err != nil {
		return nil, syntaxError(source, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(source, err)
	default:
		return nil, &FieldError{File: source, Line: extra.Line,
			Problem: "a second YAML document starts here; a config is one document"}
	}
	doc := &document{file: source}
	if len(root.Content) == 1 && !isNull(root.Content[0]) {
		doc.root = root.Content[0]
	}
	return doc, nil
}

func syntaxError(source string, err error) error {
	errs := yamlErrors(source, err)
	for _, e := range errs {
		if fe, ok := e.(*FieldError); ok {
			fe.Line = syntaxLine(fe.Line, fe.Problem)
			fe.Problem = "invalid YAML: " + fe.Problem
		}
	}
	return errors.Join(errs...)
}

// syntaxLine corrects the line of a yaml.v3 syntax error. yaml.v3 (parser.fail in
// decode.go) prints libyaml's 0-based marks: it adds 1 for scanner errors but not for
// parser errors, and prints no line when the mark is on the first line. For a parser
// error the line is then that of the construct being parsed, such as an unclosed "[".
func syntaxLine(line int, problem string) int {
	hasPrefix := func(prefixes ...string) bool {
		return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(problem, p) })
	}
	switch {
	case hasPrefix("did not find expected ',' or", "did not find expected <", "did not find expected key",
		"did not find expected '-' indicator", "did not find expected node content",
		"found duplicate %", "found incompatible YAML document", "found undefined tag handle"):
		return line + 1
	case line == 0 && hasPrefix("found ", "did not find ", "could not find ", "mapping ", "block sequence "):
		return 1
	}
	return line
}

// resolvePaths makes the relative file names of the config absolute against dir.
func resolvePaths(cfg *Config, dir string) error {
	for _, f := range []struct {
		field string
		name  *string
	}{
		{"auth.users_file", &cfg.Auth.UsersFile},
		{"auth.ldap.ca_file", &cfg.Auth.LDAP.CAFile},
		{"auth.ldap.bind_password_file", &cfg.Auth.LDAP.BindPasswordFile},
		{"auth.kerberos.keytab_file", &cfg.Auth.Kerberos.KeytabFile},
		{"cluster.redis_password_file", &cfg.Cluster.RedisPasswordFile},
		{"state_dir", &cfg.StateDir},
		{"tls.cert_file", &cfg.TLS.CertFile},
		{"tls.key_file", &cfg.TLS.KeyFile},
		{"tls.client_ca_file", &cfg.TLS.ClientCAFile},
	} {
		if *f.name == "" || filepath.IsAbs(*f.name) {
			continue
		}
		abs, err := filepath.Abs(filepath.Join(dir, *f.name))
		if err != nil {
			return &FieldError{File: cfg.Source, Field: f.field, Problem: err.Error(), Err: err}
		}
		*f.name = abs
	}
	return nil
}
