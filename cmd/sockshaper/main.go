// Command sockshaper is the SOCKS5 daemon: it wires configs, proxy, shaping and
// metrics together, handles signals, and offers the sub-commands of commands.go
// (check-config, passwd, healthcheck, version, help).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
	_ "time/tzdata" // time zones of quotas and windows without a host database (distroless)
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options are the flags of every command; each command declares the ones it takes.
type options struct {
	configPath string
	logFormat  string
	logLevel   string
	accessLog  string
	url        string        // healthcheck
	timeout    time.Duration // healthcheck
	users      usersOptions  // users
	apps       appsOptions   // apps update-m365
}

// configFlag declares -config, shared by serve, check-config and healthcheck.
func configFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.configPath, "config", "", "config `FILE` (YAML); empty: the embedded default (loopback only, no users)")
}

// serveFlags declares the flags of the proxy itself.
func serveFlags(fs *flag.FlagSet, o *options) {
	configFlag(fs, o)
	fs.StringVar(&o.logFormat, "log-format", "text", "log `FORMAT`: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	fs.StringVar(&o.accessLog, "access-log", "", "`FILE` for the per-session accounting lines, reopened on SIGHUP (for logrotate); empty: standard error")
}

// newLogger builds the slog logger the flags ask for.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: durationSeconds}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, errors.New("-log-format: want text or json")
}

// durationSeconds writes a duration attribute as seconds, a float
// ("duration":0.0038, timeout=5), in both formats: slog's JSON handler would
// write integer nanoseconds and its text handler Go's "3.8ms", which log
// pipelines (jq, Loki) cannot compare or sum.
func durationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key, a.Value.Duration().Seconds())
	}
	return a
}

// runCheckConfig takes the config as FILE or -config (the example config's header
// and older scripts use either) and checks it.
func runCheckConfig(inv invocation) int {
	path := inv.opts.configPath
	if len(inv.args) == 1 {
		if path != "" && path != inv.args[0] {
			return inv.usage(fmt.Sprintf("two configs given (-config %q and %q): give one", path, inv.args[0]))
		}
		path = inv.args[0]
	}
	return checkConfig(path, inv.stdout, inv.stderr)
}
