package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// command is one sub-command of sockshaper. Adding a sub-command is adding one entry
// to [commands]: the dispatcher parses its flags, checks the number of its
// arguments and prints its usage, so run sees only a well-formed invocation.
type command struct {
	name    string
	args    string // the positional arguments as usage shows them, e.g. "[FILE]"
	summary string // one line for the list of commands
	minArgs int    // fewest positional arguments
	maxArgs int    // most positional arguments; -1: any number
	// flags declares the command's flags on fs, storing into o; nil for none.
	flags func(fs *flag.FlagSet, o *options)
	// run does the work and returns the exit code: 0 done, 1 failed (the reason on
	// inv.stderr), 2 wrong invocation.
	run func(inv invocation) int
}

// invocation is what a command runs with: its parsed flags, the positional arguments
// and the standard streams.
type invocation struct {
	opts   options
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	usage  func(problem string) int // prints problem and the command's usage on stderr, returns 2
}

// defaultCommand runs when the first argument is a flag or there is none, so that
// `sockshaper -config FILE` runs the proxy as it always has.
const defaultCommand = "serve"

// commands is the table of sub-commands, in the order usage lists them.
func commands() []command {
	return []command{
		{name: "serve", summary: "run the proxy (the default: `sockshaper [flags]` is `sockshaper serve [flags]`)",
			flags: serveFlags, run: func(inv invocation) int { return serve(inv.opts, inv.stderr) }},
		{name: "check-config", args: "[FILE]", maxArgs: 1,
			summary: "validate a config (FILE or -config; neither: the embedded default) and its users file, as a reload would",
			flags:   configFlag, run: runCheckConfig},
		{name: "passwd", args: "USER", minArgs: 1, maxArgs: 1,
			summary: "read a password on standard input (on a terminal: twice, without echo; a mismatch writes nothing), print a users-file line",
			run:     func(inv invocation) int { return passwd(inv.args, inv.stdin, inv.stdout, inv.stderr) }},
		{name: "ldap-test", args: "USER", minArgs: 1, maxArgs: 1,
			summary: "log USER in against auth.ldap (password on standard input) and show the entry, groups and shaping group, or why it fails",
			flags:   configFlag, run: ldapTest},
		{name: "users", summary: "print who uses the proxy now, from the admin listener's usage view (GET /api/v1/users)",
			flags: usersFlags, run: usersCommand},
		{name: "apps update-m365", summary: "write an apps file (apps_file) of Microsoft's current Teams networks, names and ports " +
			"from its endpoints web service, for cron; the old file stays on any error",
			flags: appsFlags, run: updateM365},
		{name: "healthcheck", summary: "exit 0 when the admin endpoint's /readyz answers 200, 1 otherwise (for HEALTHCHECK and probes)",
			flags: healthcheckFlags, run: healthcheck},
		{name: "version", summary: "print the version, the VCS revision and the Go version of this binary",
			run: printVersion},
		{name: "help", args: "[COMMAND]", maxArgs: 2, summary: "print this help, or one command's",
			run: help},
	}
}

// run is main without the exit, so tests can drive it: it picks the command, parses
// its flags and arguments and runs it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name, group := defaultCommand, ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
		if len(subcommands(name)) > 0 { // a group such as apps: its sub-command follows
			group = name
			if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
				name, args = name+" "+args[0], args[1:]
			}
		}
	}
	c, ok := lookup(name)
	if !ok && group != "" {
		fmt.Fprintf(stderr, "sockshaper %s: name a sub-command: %s\n", group, strings.Join(subcommands(group), ", "))
		return 2
	}
	if !ok {
		fmt.Fprintf(stderr, "sockshaper: unknown command %q (to run the proxy on a config: sockshaper -config FILE)\n\n", name)
		writeUsage(stderr)
		return 2
	}
	inv := invocation{stdin: stdin, stdout: stdout, stderr: stderr}
	inv.usage = func(problem string) int {
		fmt.Fprintf(stderr, "sockshaper %s: %s\n\n", c.name, problem)
		writeCommandUsage(stderr, c)
		return 2
	}
	fs := c.flagSet(&inv.opts)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		if c.name == defaultCommand {
			writeUsage(stdout)
		} else {
			writeCommandUsage(stdout, c)
		}
		return 0
	} else if err != nil {
		return inv.usage(err.Error())
	}
	inv.args = fs.Args()
	if problem := c.checkArgs(inv.args); problem != "" {
		return inv.usage(problem)
	}
	return c.run(inv)
}

// lookup finds a command by name.
func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// subcommands returns the sub-commands of group, such as update-m365 of
// "apps"; none for a command that is not a group.
func subcommands(group string) []string {
	var subs []string
	for _, c := range commands() {
		if sub, ok := strings.CutPrefix(c.name, group+" "); ok {
			subs = append(subs, sub)
		}
	}
	return subs
}

// flagSet returns the command's flags, storing into o. It prints nothing itself: run
// reports parse errors together with the usage.
func (c command) flagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("sockshaper "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c.flags != nil {
		c.flags(fs, o)
	}
	return fs
}

// checkArgs returns what is wrong with the number of positional arguments, or "".
func (c command) checkArgs(args []string) string {
	switch {
	case len(args) < c.minArgs:
		return "missing argument " + c.args
	case c.maxArgs >= 0 && len(args) > c.maxArgs:
		extra := args[c.maxArgs]
		if strings.HasPrefix(extra, "-") {
			return fmt.Sprintf("unexpected argument %q (flags go before arguments)", extra)
		}
		return fmt.Sprintf("unexpected argument %q", extra)
	}
	return ""
}

// synopsis is the command's usage line, e.g. "sockshaper check-config [flags] [FILE]".
func (c command) synopsis() string {
	s := "sockshaper " + c.name
	if c.flags != nil {
		s += " [flags]"
	}
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// writeCommandUsage prints one command's synopsis, summary and flags.
func writeCommandUsage(w io.Writer, c command) {
	fmt.Fprintf(w, "usage: %s\n  %s\n", c.synopsis(), c.summary)
	if c.flags == nil {
		return
	}
	fmt.Fprintln(w, "flags:")
	fs := c.flagSet(&options{})
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// writeUsage prints every command with its flags.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, "sockshaper: a campus proxy (SOCKS5, HTTP, HTTPS and HTTP/2 on one daemon), authenticated, shaped and measured.\n\n")
	fmt.Fprint(w, "usage: sockshaper [flags]            run the proxy (same as sockshaper serve [flags])\n")
	fmt.Fprint(w, "       sockshaper COMMAND [flags] [ARGUMENTS]\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	for _, c := range commands() {
		fmt.Fprintln(w)
		writeCommandUsage(w, c)
	}
	fmt.Fprint(w, "\n`sockshaper help COMMAND` prints one command's usage; every command takes -h.\n")
}

// help prints the usage of every command, or of the one named, on standard output.
func help(inv invocation) int {
	if len(inv.args) == 0 {
		writeUsage(inv.stdout)
		return 0
	}
	name := strings.Join(inv.args, " ")
	c, ok := lookup(name)
	if !ok {
		return inv.usage(fmt.Sprintf("unknown command %q", name))
	}
	writeCommandUsage(inv.stdout, c)
	return 0
}
