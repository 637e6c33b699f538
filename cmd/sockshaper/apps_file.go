package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// appsFileMaxAge is the age past which check-config warns about an apps file:
// Microsoft publishes changes monthly, so a file older than a month and a half
// has missed at least one.
const appsFileMaxAge = 45 * 24 * time.Hour

// writeAppsFile writes f to path whole or not at all: it is first read back
// through the config's own checks (so that no file the daemon would refuse is
// written), then written to a temporary file in the same folder, synced and
// renamed over path. On any error path is left as it was.
func writeAppsFile(path, comment string, f configs.AppsFile) error {
	data, err := f.Marshal(comment)
	if err != nil {
		return err
	}
	if _, err := configs.ParseAppsFile(data, path); err != nil {
		return fmt.Errorf("the rules do not make a valid apps file: %w", err)
	}
	return replaceFile(path, data)
}

// replaceFile writes data to a temporary file beside path and renames it over
// path, keeping path's mode when it exists (0644 otherwise: the daemon may run
// as another user than cron).
func replaceFile(path string, data []byte) (err error) {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a rename in dir durable; a folder that cannot be synced costs
// only that.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// changes says how class differs from the class of that name in old, for the
// operator reading cron's mail; "" when there is no old class.
func changes(old *configs.AppsFile, class configs.AppClass) string {
	if old == nil {
		return ""
	}
	i := slices.IndexFunc(old.Apps, func(c configs.AppClass) bool { return c.Name == class.Name })
	if i < 0 {
		return ""
	}
	prev := old.Apps[i]
	var b strings.Builder
	diff(&b, "name", prev.Domains, class.Domains)
	diff(&b, "network", prev.Networks, class.Networks)
	diff(&b, "port", portStrings(prev.Ports), portStrings(class.Ports))
	if b.Len() == 0 {
		return fmt.Sprintf("\nunchanged from version %s", old.Source.Version)
	}
	return fmt.Sprintf("\nchanges from version %s:%s", old.Source.Version, b.String())
}

func diff(w io.Writer, what string, before, after []string) {
	for _, s := range before {
		if !slices.Contains(after, s) {
			fmt.Fprintf(w, "\n  - %s %s", what, s)
		}
	}
	for _, s := range after {
		if !slices.Contains(before, s) {
			fmt.Fprintf(w, "\n  + %s %s", what, s)
		}
	}
}

func portStrings(prs []configs.PortRange) []string {
	out := make([]string, len(prs))
	for i, p := range prs {
		out[i] = p.String()
	}
	return out
}

// appsFileNote describes cfg's apps file for check-config's summary, and warns
// when it was generated more than 45 days before now (or in the future, which
// a wrong clock or a hand-edited file would explain). Both are "" without an
// apps file.
func appsFileNote(cfg *configs.Config, now time.Time) (note, warning string) {
	s := cfg.AppsSource
	if s == nil {
		return "", ""
	}
	age := now.Sub(s.GeneratedTime)
	note = fmt.Sprintf("apps file %s (version %s, generated %s)", cfg.AppsFile, s.Version, s.Generated)
	switch {
	case age > appsFileMaxAge:
		warning = fmt.Sprintf("apps file %s is %d days old (version %s); run sockshaper apps update-m365",
			cfg.AppsFile, int(age/(24*time.Hour)), s.Version)
	case age < -24*time.Hour:
		warning = fmt.Sprintf("apps file %s was generated in the future (%s); check the clock", cfg.AppsFile, s.Generated)
	}
	return note, warning
}
