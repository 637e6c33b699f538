package main

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// campusOptions are the flags of the campus scenario. The same flags size both
// the setup (-setup writes the users file and a config whose global cap follows
// the mix) and the run, so give both the same ones.
type campusOptions struct {
	setup     string  // write the users file and config into this folder and exit
	config    string  // the sockshaper config the proxy runs on: users and limits
	password  string  // every user's password
	userCount int     // -setup: users to write
	cost      int     // -setup: bcrypt cost
	perAddr   int     // users behind one client address (NAT)
	hogs      int     // users without a limit of their own, hogSess long downloads each
	hogSess   int     // long downloads of each hog
	heavy     int     // users with heavySess long downloads each
	heavySess int     // long downloads of each heavy user
	dlFrac    float64 // share of users with dlSess long downloads each
	dlSess    int     // long downloads of each other downloader
	callFrac  float64 // share of users in a call (one TCP, one UDP flow)
	bulkFrac  float64 // share of users with an unpaced skype-class download
	browse    time.Duration
	slowloris int
	slowAddrs int
	keepPer   int           // unauthenticated HTTP keep-alive connections per address
	keepAddrs int           // addresses they come from
	keepEvery time.Duration // their requests' interval; 0: half the config's http.keepalive, at most -window
	guessers  int
	guessAddr int
	guessGap  time.Duration
	window    time.Duration
	warmup    time.Duration
	metrics   string
	quick     bool
}

// register adds the campus flags to fs.
func (c *campusOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&c.setup, "setup", "", "write users.htpasswd and sockshaper.yaml for this mix into `DIR` and exit")
	fs.StringVar(&c.config, "config", "", "the proxy's config `FILE` (from -setup): users file and limits are read from it")
	fs.IntVar(&c.userCount, "user-count", 2000, "-setup: number of users to write")
	fs.IntVar(&c.cost, "cost", 5, "-setup: bcrypt cost of the users file (5 is what htpasswd -B writes)")
	fs.IntVar(&c.perAddr, "users-per-addr", 5, "users behind one client address (NAT)")
	fs.IntVar(&c.hogs, "hogs", 1, "users in group staff (no limit of their own, only the global cap's fair share) with -hog-sessions long downloads each")
	fs.IntVar(&c.hogSess, "hog-sessions", 100, "long downloads of each hog")
	fs.IntVar(&c.heavy, "heavy", 4, "users with -heavy-sessions long downloads each")
	fs.IntVar(&c.heavySess, "heavy-sessions", 100, "long downloads of each heavy user")
	fs.Float64Var(&c.dlFrac, "downloaders", 0.05, "share of users with -dl-sessions long downloads each")
	fs.IntVar(&c.dlSess, "dl-sessions", 2, "long downloads of each downloader")
	fs.Float64Var(&c.callFrac, "callers", 0.05, "share of users in a call: a TCP and a UDP flow of 64-256 kbit/s each")
	fs.Float64Var(&c.bulkFrac, "skype-bulk", 0.01, "share of users with an unpaced skype-class download (screen share, file)")
	fs.DurationVar(&c.browse, "browse-every", 5*time.Second, "mean time between one user's short sessions")
	fs.IntVar(&c.slowloris, "slowloris", 1000, "connections that open and then send nothing or a byte at a time")
	fs.IntVar(&c.slowAddrs, "slowloris-addrs", 4, "client addresses the slowloris connections come from")
	fs.IntVar(&c.keepPer, "keepalive-per-addr", 200, "unauthenticated HTTP keep-alive connections per address: GET /proxy.pac or a proxied GET without credentials (407), again and again")
	fs.IntVar(&c.keepAddrs, "keepalive-addrs", 4, "client addresses the keep-alive connections come from")
	fs.DurationVar(&c.keepEvery, "keepalive-every", 0, "interval of a keep-alive connection's requests (0: half the config's http.keepalive, at most -window)")
	fs.IntVar(&c.guessers, "guessers", 64, "concurrent password guessers")
	fs.IntVar(&c.guessAddr, "guess-addrs", 8, "client addresses the guessers come from")
	fs.DurationVar(&c.guessGap, "guess-every", 250*time.Millisecond, "shortest time between one guesser's attempts")
	fs.DurationVar(&c.window, "window", 10*time.Second, "length of one report window")
	fs.DurationVar(&c.warmup, "warmup", 10*time.Second, "time between opening the long sessions and the first window")
	fs.StringVar(&c.metrics, "metrics", "", "the proxy's metrics `URL`: auth attempts by result per window")
	fs.BoolVar(&c.quick, "quick", false, "smoke test: 300 users (-setup), 15 s in 5 s windows, a smaller background")
}

// applyQuick sets the -quick values of every flag not given explicitly.
func (c *campusOptions) applyQuick(fs *flag.FlagSet, o *options) {
	if !c.quick {
		return
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	quick := []struct {
		name  string
		apply func()
	}{
		{"user-count", func() { c.userCount = 300 }},
		{"heavy", func() { c.heavy = 1 }},
		{"slowloris", func() { c.slowloris = 200 }},
		{"keepalive-per-addr", func() { c.keepPer = 50 }},
		{"guessers", func() { c.guessers = 16 }},
		{"window", func() { c.window = 5 * time.Second }},
		{"warmup", func() { c.warmup = 3 * time.Second }},
		{"duration", func() { o.duration = 15 * time.Second }},
	}
	for _, q := range quick {
		if !set[q.name] {
			q.apply()
		}
	}
}

// check validates the campus flags; password is -password.
func (c *campusOptions) check(password string, duration time.Duration) error {
	c.password = password
	switch {
	case c.setup == "" && c.config == "":
		return errors.New("-config (the proxy's config) or -setup DIR is required")
	case c.password == "":
		return errors.New("-password: every user's password is required")
	case c.userCount < 1 || c.userCount > 100_000:
		return fmt.Errorf("-user-count: want 1 to 100000, got %d", c.userCount)
	case c.cost < 4 || c.cost > 31:
		return fmt.Errorf("-cost: bcrypt costs are 4 to 31, got %d", c.cost)
	case c.perAddr < 1:
		return errors.New("-users-per-addr: want at least 1")
	case c.hogs < 0 || c.heavy < 0 || c.hogSess < 1 || c.heavySess < 1 || c.dlSess < 1:
		return errors.New("-hogs and -heavy: want 0 or more; -hog-sessions, -heavy-sessions and -dl-sessions: at least 1")
	case !fraction(c.dlFrac) || !fraction(c.callFrac) || !fraction(c.bulkFrac):
		return errors.New("-downloaders, -callers and -skype-bulk: want shares from 0 to 1")
	case c.browse <= 0 || c.guessGap <= 0:
		return errors.New("-browse-every and -guess-every: want more than 0")
	case c.hogs*c.hogSess > maxConns || c.heavy*c.heavySess > maxConns || c.slowloris > maxConns || c.guessers > maxConns ||
		c.keepPer*c.keepAddrs > maxConns:
		return fmt.Errorf("-hogs × -hog-sessions, -heavy × -heavy-sessions, -slowloris, -guessers and the keep-alive connections: at most %d each", maxConns)
	case c.keepPer < 0 || c.keepAddrs < 1 || c.keepAddrs > 254 || c.keepEvery < 0:
		return errors.New("-keepalive-per-addr and -keepalive-every: want 0 or more; -keepalive-addrs: 1 to 254")
	case c.slowloris < 0 || c.guessers < 0 || c.slowAddrs < 1 || c.guessAddr < 1 || c.slowAddrs > 254 || c.guessAddr > 254:
		return errors.New("-slowloris and -guessers: want 0 or more; their -addrs: 1 to 254")
	case c.window < time.Second || c.window > duration:
		return errors.New("-window: want at least 1s and at most -duration")
	case c.warmup < 0 || c.warmup > maxDuration:
		return fmt.Errorf("-warmup: want 0 to %v", maxDuration)
	}
	return nil
}

func fraction(f float64) bool { return f >= 0 && f <= 1 }
