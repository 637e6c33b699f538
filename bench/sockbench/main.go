// Command sockbench is the load tool of sockshaper. It measures any SOCKS5 proxy
// (sockshaper, Dante, microsocks, ...), with -http any HTTP proxy (sockshaper's
// HTTP front, Squid, tinyproxy, ...), or, with -direct, the plain loopback path
// that is the ceiling for all of them.
//
// sockbench speaks SOCKS5 with RFC 1929 username/password authentication itself
// and runs its own targets on 127.0.0.1: a source that streams bytes, a sink that
// counts them a 64-byte echo and a UDP echo. It never connects anywhere else. Every scenario
// is bounded in time and in count and stops by itself:
//
//	download, upload  parallel bulk transfers: total and per-connection MiB/s,
//	                  coefficient of variation, per-user totals, proxy CPU per GiB
//	latency           64-byte request/response round trips: p50, p90, p99, max
//	churn             clients looping whole sessions: sessions/s and errors
//	get-churn         clients looping HTTP requests through an HTTP proxy, one per
//	                  connection (absolute URI, Connection: close): requests/s
//	idle              open sessions held idle: proxy memory per session
//	rate-change       a download across a config rewrite and SIGHUP: how long the
//	                  achieved rate takes to reach the new limit
//	udp               UDP ASSOCIATE: associations keeping a window of datagrams
//	                  in flight to a UDP echo: datagrams/s, loss, round trips,
//	                  proxy CPU per million datagrams
//	campus            thousands of users behind NAT addresses browsing, downloading
//	                  and in calls, under a slowloris and a guessing background:
//	                  per 10 s window, starved sessions, each limit's rate against
//	                  its setting, fairness, login times, proxy CPU and memory
//
// Results go to standard output as a table, or as one JSON object with -json;
// progress and errors go to standard error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
)

const usage = `usage: sockbench SCENARIO [flags]

scenarios:
  download     N connections read from the source target for -duration
  upload       N connections write to the sink target for -duration
  latency      64-byte round trips to the echo target over -conns connections
  churn        -conns clients loop whole sessions (greeting, auth, CONNECT, 64 B, close)
  get-churn    -conns clients loop HTTP requests through an HTTP proxy, one per connection
  idle         open -sessions sessions, hold them; proxy memory per session (-pid)
  rate-change  download, copy -new-config over -config, SIGHUP -pid, time to -new-rate
  udp          -conns UDP associations keep -window datagrams of -size bytes in flight
               to a UDP echo for -duration: datagrams/s, loss, round trip (-window 1)
  udp-calls    -conns calls' media both ways over UDP associations, one datagram of -size
               bytes per -frame each way: loss, jitter against the senders' schedule
  campus       a campus's users, calls, downloads and attackers against -config's proxy
               (sockbench campus -setup DIR writes the users file and the config)

Run "sockbench SCENARIO -h" for the flags of one scenario.
`

// scenario runs one measurement and returns its result, which is printed as a
// table or as JSON.
type scenario func(ctx context.Context, o *options, log *slog.Logger) (result, error)

// result is what a scenario measured.
type result interface {
	// table writes the result for people, one fact per line.
	table(w io.Writer)
}

func scenarios() map[string]scenario {
	return map[string]scenario{
		"download":    runDownload,
		"upload":      runUpload,
		"latency":     runLatency,
		"churn":       runChurn,
		"get-churn":   runGetChurn,
		"idle":        runIdle,
		"rate-change": runRateChange,
		"campus":      runCampus,
		"udp":         runUDP,
		"udp-calls":   runUDPCalls,
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the exit and the signals, so tests can drive it. It returns
// 0 on success, 1 when the scenario failed and 2 for a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	name := args[0]
	sc, ok := scenarios()[name]
	if !ok {
		fmt.Fprintf(stderr, "sockbench: unknown scenario %q\n%s", name, usage)
		return 2
	}
	o, err := parseOptions(name, args[1:], stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "sockbench:", err)
		}
		return 2
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	res, err := sc(ctx, o, log)
	if err != nil {
		fmt.Fprintf(stderr, "sockbench %s: %v\n", name, err)
		return 1
	}
	if err := printResult(stdout, name, o, res); err != nil {
		fmt.Fprintln(stderr, "sockbench:", err)
		return 1
	}
	return 0
}

// printResult writes res as a table, or as one JSON object with -json.
func printResult(w io.Writer, name string, o *options, res result) error {
	if !o.json {
		res.table(w)
		return nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("%s result: %w", name, err)
	}
	return nil
}

// newTable returns a tabwriter for aligned columns; call Flush when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
}

// stepList formats error counts by step as "(auth 2, dial 1)", sorted by step, or
// "" when there are none.
func stepList(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
