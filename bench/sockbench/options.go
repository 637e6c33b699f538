package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// Bounds that keep every run finite whatever the flags say.
const (
	// maxConns caps -conns and -sessions: each costs two descriptors here (client
	// and target side) and the RLIMIT_NOFILE hard limit is usually 2^16 or less.
	maxConns = 30000
	// maxDuration caps -duration, -hold, -before and -after: a bench run that
	// needs more than ten minutes is a soak test, not this tool.
	maxDuration = 10 * time.Minute
)

// options are the flags of one scenario. Scenarios read only the fields they
// registered; the zero value of the rest is never used.
type options struct {
	proxy       string         // SOCKS5 proxy host:port
	http        bool           // the proxy is an HTTP proxy (CONNECT, absolute-URI GET)
	direct      bool           // dial targets without a proxy
	users       []credential   // from -users and -password
	perConn     []credential   // one per connection, from -user-per-conn or round robin
	conns       int            // parallel connections (clients for churn)
	duration    time.Duration  // how long the measured phase lasts
	timeout     time.Duration  // bounds a dial plus the SOCKS5 handshake
	json        bool           // print JSON instead of a table
	verbose     bool           // debug logging
	pid         int            // proxy process to measure (CPU, memory, SIGHUP)
	clientBps   int64          // client-side pacing of a transfer, bytes/s; 0 = none
	sourceBps   int64          // download: the source target's pacing, bytes/s; 0 = none
	sessions    int            // idle: sessions to open
	hold        time.Duration  // idle: how long to hold them
	config      string         // rate-change: the live config file
	newConfig   string         // rate-change: the file copied over config
	newRate     int64          // rate-change: the limit the new config sets, bytes/s
	before      time.Duration  // rate-change: download time before the SIGHUP
	after       time.Duration  // rate-change: download time after the SIGHUP
	campus      campusOptions  // campus: the mix, the background and the windows
	calls       callOptions    // download: per-connection pacing, warm-up, expected rate
	size        int            // udp: payload bytes of a datagram, without the SOCKS5 header
	window      int            // udp: datagrams in flight per association
	lossTimeout time.Duration  // udp: how long a datagram may go unanswered before it is presumed lost
	udpCalls    udpCallOptions // udp-calls: the media's pacing and the far ends
	tls         tlsOptions     // -tls, -h2: an HTTPS proxy (tlsmode.go)
}

// rawFlags holds flag values that need parsing after flag.Parse.
type rawFlags struct {
	users, password, perConn, clientRate, sourceRate, newRate string
}

// parseOptions parses the flags of scenario name. It returns flag.ErrHelp for -h.
func parseOptions(name string, args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	var raw rawFlags
	fs := flag.NewFlagSet("sockbench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	commonFlags(fs, o, &raw, name)
	switch name {
	case "download", "upload":
		fs.StringVar(&raw.clientRate, "client-rate", "0", "pace the client to this total rate (e.g. 50MiB); 0: as fast as possible")
		fs.IntVar(&o.pid, "pid", 0, "proxy process id: report its CPU seconds per GiB (0: skip)")
		if name == "download" {
			fs.StringVar(&raw.sourceRate, "source-rate", "0", "pace the source target to this total rate (e.g. 50MiB); 0: as fast as possible")
			o.calls.register(fs)
		}
	case "churn", "get-churn":
		fs.IntVar(&o.pid, "pid", 0, "proxy process id: report its CPU microseconds per session (0: skip)")
	case "idle":
		fs.IntVar(&o.sessions, "sessions", 1000, "sessions to open and hold")
		fs.DurationVar(&o.hold, "hold", 2*time.Second, "how long to hold the sessions after they are all open")
		fs.IntVar(&o.pid, "pid", 0, "proxy process id whose memory (VmRSS, with children) is measured")
	case "rate-change":
		fs.IntVar(&o.pid, "pid", 0, "proxy process id to send SIGHUP to")
		fs.StringVar(&o.config, "config", "", "the proxy's live config file, overwritten with -new-config")
		fs.StringVar(&o.newConfig, "new-config", "", "config file whose content replaces -config")
		fs.StringVar(&raw.newRate, "new-rate", "", "the limit the new config sets for this download (e.g. 8MiB)")
		fs.DurationVar(&o.before, "before", 3*time.Second, "download time before the change")
		fs.DurationVar(&o.after, "after", 4*time.Second, "download time after the change")
	case "udp":
		fs.IntVar(&o.size, "size", 200, "payload bytes of a datagram, without the SOCKS5 UDP header")
		fs.IntVar(&o.window, "window", 32, "datagrams in flight per association (1: one round trip at a time, for latency)")
		fs.DurationVar(&o.lossTimeout, "loss-timeout", 200*time.Millisecond, "how long a datagram may go unanswered before it counts as lost and is replaced")
		fs.IntVar(&o.pid, "pid", 0, "proxy process id: report its CPU seconds per million datagrams (0: skip)")
	case "udp-calls":
		o.udpCalls.register(fs, o)
	case "campus":
		o.campus.register(fs)
		fs.IntVar(&o.pid, "pid", 0, "proxy process id: its CPU, memory and descriptors per window (0: skip)")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if name == "campus" {
		o.campus.applyQuick(fs, o)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := o.finish(name, raw); err != nil {
		return nil, err
	}
	return o, nil
}

// commonFlags registers the flags every scenario has, with per-scenario defaults.
func commonFlags(fs *flag.FlagSet, o *options, raw *rawFlags, name string) {
	conns, duration := 1, 10*time.Second
	switch name {
	case "churn", "get-churn":
		conns, duration = 16, 5*time.Second
	case "rate-change":
		conns = 4
	case "campus":
		duration = 2 * time.Minute
	}
	fs.StringVar(&o.proxy, "proxy", "127.0.0.1:1080", "SOCKS5 proxy host:port")
	fs.BoolVar(&o.http, "http", false, "the proxy is an HTTP proxy: open tunnels with CONNECT (get-churn always speaks HTTP)")
	fs.BoolVar(&o.direct, "direct", false, "connect to the targets without a proxy (the ceiling)")
	fs.StringVar(&raw.users, "users", "", "comma-separated users, each USER or USER:PASSWORD; empty: no authentication")
	fs.StringVar(&raw.password, "password", "", "password of users given without one")
	fs.StringVar(&raw.perConn, "user-per-conn", "", "connections per user, USER=N,...; sets -conns (default: round robin over -users)")
	fs.IntVar(&o.conns, "conns", conns, "parallel connections (concurrent clients for churn)")
	fs.DurationVar(&o.duration, "duration", duration, "length of the measured phase")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "limit for one dial plus SOCKS5 handshake")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON")
	fs.BoolVar(&o.verbose, "v", false, "log debug messages")
	switch name {
	case "download", "upload", "latency", "churn", "idle":
		o.tls.register(fs)
	}
}

// finish parses the raw flag values and checks the bounds.
func (o *options) finish(name string, raw rawFlags) error {
	var err error
	if o.users, err = parseUsers(raw.users, raw.password); err != nil {
		return fmt.Errorf("-users: %w", err)
	}
	if o.calls.usersFile != "" {
		if o.users != nil {
			return errors.New("-users and -users-file: give one or the other")
		}
		if o.users, err = loadUsersFile(o.calls.usersFile, raw.password); err != nil {
			return fmt.Errorf("-users-file: %w", err)
		}
	}
	if raw.perConn != "" {
		if o.perConn, err = parsePerConn(raw.perConn, o.users); err != nil {
			return fmt.Errorf("-user-per-conn: %w", err)
		}
		o.conns = len(o.perConn)
	}
	if o.clientBps, err = parseRate("-client-rate", raw.clientRate); err != nil {
		return err
	}
	if o.sourceBps, err = parseRate("-source-rate", raw.sourceRate); err != nil {
		return err
	}
	if o.newRate, err = parseRate("-new-rate", raw.newRate); err != nil {
		return err
	}
	if err := o.checkBounds(); err != nil {
		return err
	}
	if err := o.tls.check(o); err != nil {
		return err
	}
	switch name {
	case "download":
		return o.calls.finish(o)
	case "rate-change":
		return o.checkRateChange()
	case "campus":
		return o.campus.check(raw.password, o.duration)
	case "udp":
		return o.checkUDP()
	case "udp-calls":
		return o.udpCalls.check(o.conns)
	}
	return nil
}

func (o *options) checkUDP() error {
	switch {
	case o.conns > maxAssociations:
		return fmt.Errorf("-conns: want at most %d associations, got %d", maxAssociations, o.conns)
	case o.size < minUDPSize || o.size > maxUDPSize:
		return fmt.Errorf("-size: want %d to %d bytes, got %d", minUDPSize, maxUDPSize, o.size)
	case o.window < 1 || o.window > flightRing:
		return fmt.Errorf("-window: want 1 to %d, got %d", flightRing, o.window)
	case o.lossTimeout < time.Millisecond || o.lossTimeout > 10*time.Second:
		return fmt.Errorf("-loss-timeout: want 1ms to 10s, got %v", o.lossTimeout)
	}
	return nil
}

func (o *options) checkBounds() error {
	switch {
	case o.conns < 1 || o.conns > maxConns:
		return fmt.Errorf("-conns: want 1 to %d, got %d", maxConns, o.conns)
	case o.sessions < 0 || o.sessions > maxConns:
		return fmt.Errorf("-sessions: want 1 to %d, got %d", maxConns, o.sessions)
	case o.duration <= 0 || o.duration > maxDuration:
		return fmt.Errorf("-duration: want more than 0 and at most %v", maxDuration)
	case o.hold < 0 || o.hold > maxDuration, o.before < 0 || o.before > maxDuration, o.after < 0 || o.after > maxDuration:
		return fmt.Errorf("-hold, -before and -after: want 0 to %v", maxDuration)
	case o.timeout <= 0:
		return errors.New("-timeout: want more than 0")
	}
	if o.perConn == nil {
		o.perConn = roundRobin(o.users, o.conns)
	}
	return nil
}

func (o *options) checkRateChange() error {
	switch {
	case o.pid <= 0:
		return errors.New("-pid: the proxy's process id is required")
	case o.config == "" || o.newConfig == "":
		return errors.New("-config and -new-config are required")
	case o.newRate <= 0:
		return errors.New("-new-rate: the new limit is required and must be more than 0")
	case o.before < time.Second || o.after < time.Second:
		return errors.New("-before and -after: want at least 1s each")
	}
	return nil
}

// parseRate parses a rate in the units of the sockshaper config ("8Mbit", "4MiB");
// "" is 0.
func parseRate(flagName, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	r, err := configs.ParseRate(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", flagName, err)
	}
	return int64(r), nil
}
