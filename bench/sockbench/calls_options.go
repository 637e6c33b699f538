package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bounds of the call flags of the download scenario.
const (
	// minFrame keeps the frame pacer's wake-ups per second bounded: a 1 ms
	// frame already means a thousand writes per second per connection.
	minFrame = time.Millisecond
	// maxFrame is a second: coarser pacing is not a call any more.
	maxFrame = time.Second
	// minReadEvery bounds the poller's wake-ups as minFrame bounds the pacer's.
	minReadEvery = time.Millisecond
)

// callOptions are the download flags for many slow, paced sessions, such as a
// campus's calls: per-connection source pacing in frames, a warm-up before the
// measured phase, a polled client side, and the rate every connection should get.
type callOptions struct {
	usersFile   string        // htpasswd-style file whose names log in, each with -password
	sourceConn  int64         // bytes/s each source connection sends; 0 = not per connection
	frame       time.Duration // the per-connection source sends one frame this often
	warmup      time.Duration // data flows this long before the measured phase
	readEvery   time.Duration // 0: one blocking reader per connection; else a poll this often
	expectBps   int64         // the rate each connection should get, bytes/s; 0 = no check
	tolerance   float64       // accepted deviation from expectBps, as a fraction
	rawRate     string
	rawExpect   string
	rawTolerate string
}

// register adds the call flags of the download scenario to fs.
func (c *callOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&c.usersFile, "users-file", "", "log in as the users of this htpasswd-style `FILE` (names only; the password is -password), round robin over -conns")
	fs.StringVar(&c.rawRate, "source-rate-per-conn", "0", "pace each source connection to this rate (e.g. 256kbit), in -frame frames; 0: see -source-rate")
	fs.DurationVar(&c.frame, "frame", 20*time.Millisecond, "with -source-rate-per-conn: one frame of rate × frame bytes this often, as a call sends")
	fs.DurationVar(&c.warmup, "warmup", 0, "let data flow this long before the measured phase (logins done, token buckets past their burst)")
	fs.DurationVar(&c.readEvery, "read-every", 0, "read every connection without blocking this often from a few goroutines (cheap for thousands of slow sessions); 0: one blocking reader each")
	fs.StringVar(&c.rawExpect, "expect-rate", "", "the rate each connection should get (e.g. 256kbit): count those within -tolerance")
	fs.StringVar(&c.rawTolerate, "tolerance", "5%", "accepted deviation from -expect-rate, in percent")
}

// finish parses the raw values and checks them against the other options.
func (c *callOptions) finish(o *options) error {
	var err error
	if c.sourceConn, err = parseRate("-source-rate-per-conn", c.rawRate); err != nil {
		return err
	}
	if c.expectBps, err = parseRate("-expect-rate", c.rawExpect); err != nil {
		return err
	}
	if c.tolerance, err = parsePercent(c.rawTolerate); err != nil {
		return fmt.Errorf("-tolerance: %w", err)
	}
	switch {
	case c.sourceConn > 0 && o.sourceBps > 0:
		return errors.New("-source-rate and -source-rate-per-conn: give one or the other")
	case c.frame < minFrame || c.frame > maxFrame:
		return fmt.Errorf("-frame: want %v to %v, got %v", minFrame, maxFrame, c.frame)
	case c.sourceConn > 0 && frameBytes(c.sourceConn, c.frame) < 1:
		return fmt.Errorf("-frame: %v at %d B/s is less than a byte", c.frame, c.sourceConn)
	case c.warmup < 0 || c.warmup > maxDuration:
		return fmt.Errorf("-warmup: want 0 to %v", maxDuration)
	case c.readEvery != 0 && (c.readEvery < minReadEvery || c.readEvery > o.duration):
		return fmt.Errorf("-read-every: want 0, or %v up to -duration", minReadEvery)
	}
	return nil
}

// frameBytes is the size of one frame of a source paced to bps: bps × frame,
// rounded to the nearest byte (640 B for 256 kbit/s in 20 ms).
func frameBytes(bps int64, frame time.Duration) int {
	return int((bps*int64(frame) + int64(time.Second)/2) / int64(time.Second))
}

// parsePercent parses "5%" or "2.5%" into a fraction (0.05, 0.025). The sign is
// required, so that "5" cannot be read as 500%.
func parsePercent(s string) (float64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		return 0, fmt.Errorf("%q: want a percentage such as 5%%", s)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v < 0 || v >= 100 {
		return 0, fmt.Errorf("%q: want a percentage from 0%% to below 100%%", s)
	}
	return v / 100, nil
}

// loadUsersFile returns a credential for each name in an htpasswd-style file,
// all with password.
func loadUsersFile(path, password string) ([]credential, error) {
	names, err := readUserNames(path)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(names))
	out := make([]credential, len(names))
	for i, name := range names {
		if seen[name] || len(name) > maxField {
			return nil, fmt.Errorf("%s: user %.40q is listed twice or longer than %d bytes", path, name, maxField)
		}
		seen[name] = true
		out[i] = credential{user: name, password: password}
	}
	return out, nil
}
