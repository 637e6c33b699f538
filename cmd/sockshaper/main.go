// Command sockshaper is the SOCKS5 daemon: it wires configs, proxy, shaping and
// metrics together, handles signals, and offers the check-config, passwd and
// version sub-commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	_ "time/tzdata" // time zones of quotas and windows without a host database (distroless)
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage:
  sockshaper [flags]                      run the proxy (embedded default config without -config)
  sockshaper check-config -config FILE    validate a config and its users file
  sockshaper passwd USER                  read a password on stdin, print a users-file line
  sockshaper users -config FILE [-sort bytes|rate] [-n 20] [-watch] [-all] [-json] [-admin ADDR]
                                          print who uses the proxy now (the admin listener's usage view)
  sockshaper version                      print the version

flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the exit, so tests can drive it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "check-config":
		return checkConfig(args, stdout, stderr)
	case "passwd":
		return passwd(args, stdin, stdout, stderr)
	case "users":
		return usersCommand(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "sockshaper", version)
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sockshaper: unknown command %q\n%s", cmd, usage)
	return 2
}

// options are the flags shared by serve and check-config.
type options struct {
	configPath string
	logFormat  string
	logLevel   string
	accessLog  string
}

func parseFlags(name string, args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&o.configPath, "config", "", "config file (YAML); empty runs the embedded default")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.accessLog, "access-log", "", "file for the per-session accounting lines (reopened on SIGHUP); empty: standard error")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, nil
}

// newLogger builds the slog logger the flags ask for.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, errors.New("-log-format: want text or json")
}
