package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	usagestore "github.com/sockshaper/sockshaper/usage"
)

// usersOptions are the flags of `sockshaper users` besides -config.
type usersOptions struct {
	admin    string
	sort     string
	n        int
	watch    bool
	interval time.Duration
	all      bool
	json     bool
}

// usersFlags declares the flags of `sockshaper users`.
func usersFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.configPath, "config", "", "config `FILE` of the daemon to ask (its admin_listen); empty: the embedded default's")
	u := &o.users
	fs.StringVar(&u.admin, "admin", "", "admin listener to ask, host:port; overrides the config's admin_listen")
	fs.StringVar(&u.sort, "sort", "bytes", "order: bytes (today, both directions) or rate (now, both directions)")
	fs.IntVar(&u.n, "n", 20, "rows to print; 0 prints every user")
	fs.BoolVar(&u.watch, "watch", false, "redraw every -interval until interrupted, like top")
	fs.DurationVar(&u.interval, "interval", 2*time.Second, "redraw interval of -watch")
	fs.BoolVar(&u.all, "all", false, "every user with usage this month, not only those active in the last 15 minutes")
	fs.BoolVar(&u.json, "json", false, "print the JSON the admin listener serves instead of a table")
}

// check reports a wrong flag value, "" when they are right.
func (o usersOptions) check() string {
	switch {
	case o.sort != "bytes" && o.sort != "rate":
		return fmt.Sprintf("-sort %q: want bytes or rate", o.sort)
	case o.n < 0 || o.interval <= 0:
		return "-n must not be negative and -interval must be positive"
	}
	return ""
}

// usersCommand prints the usage view of the daemon that a config describes, read from
// GET /api/v1/users on its admin listener.
func usersCommand(inv invocation) int {
	o, stdout, stderr := inv.opts.users, inv.stdout, inv.stderr
	if problem := o.check(); problem != "" {
		return inv.usage(problem)
	}
	admin, source := o.admin, "-admin"
	if admin == "" {
		cfg, err := loadConfig(inv.opts.configPath)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		admin, source = cfg.AdminListen, cfg.Source
	}
	url, err := usersURL(admin, o.all)
	if err != nil {
		fmt.Fprintf(stderr, "sockshaper users: %s: %v\n", source, err)
		return 1
	}
	if !o.watch {
		if err := showUsers(stdout, url, o); err != nil {
			fmt.Fprintln(stderr, "sockshaper users:", err)
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	for {
		fmt.Fprint(stdout, "\x1b[H\x1b[2J") // home, clear: redraw in place
		if err := showUsers(stdout, url, o); err != nil {
			fmt.Fprintln(stdout, "sockshaper users:", err) // the daemon may be restarting: keep trying
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(o.interval):
		}
	}
}

// usersURL returns the usage view's URL on admin_listen; a wildcard host is
// asked on loopback.
func usersURL(adminListen string, all bool) (string, error) {
	if adminListen == "" {
		return "", fmt.Errorf("admin_listen is off; the usage view is served there")
	}
	host, port, err := net.SplitHostPort(adminListen)
	if err != nil {
		return "", fmt.Errorf("admin_listen %q: %w", adminListen, err)
	}
	if port == "0" {
		return "", fmt.Errorf("admin_listen %q takes a free port at start: give the address the daemon logged with -admin", adminListen)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	url := "http://" + net.JoinHostPort(host, port) + usagestore.APIPath
	if all {
		url += "?all=1"
	}
	return url, nil
}

// showUsers fetches the view once and prints it.
func showUsers(w io.Writer, url string, o usersOptions) error {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if o.json {
		_, err := w.Write(body)
		return err
	}
	var r usagestore.Report
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	printUsers(w, url, r, o.sort, o.n)
	return nil
}

// printUsers writes r as a table, sorted by sortBy ("bytes" or "rate"), at most
// n rows (0: all).
func printUsers(w io.Writer, source string, r usagestore.Report, sortBy string, n int) {
	users := slices.Clone(r.Users)
	key := func(u usagestore.UserReport) float64 { return float64(u.Today.Total) }
	if sortBy == "rate" {
		key = func(u usagestore.UserReport) float64 { return u.Rate.Upload + u.Rate.Download }
	}
	slices.SortStableFunc(users, func(a, b usagestore.UserReport) int { return cmp.Compare(key(b), key(a)) })
	shown := users
	if n > 0 && len(users) > n {
		shown = users[:n]
	}
	windows := "none"
	if len(r.WindowsOpen) > 0 {
		windows = strings.Join(r.WindowsOpen, ", ")
	}
	at := r.Generated
	if loc, err := configs.LoadTimeZone(r.TimeZone); err == nil {
		at = at.In(loc) // the daemon's calendar, whose day the counts are of
	}
	fmt.Fprintf(w, "%s  %s %s  windows open: %s  %d of %d users by %s\n",
		source, at.Format("2006-01-02 15:04:05"), r.TimeZone, windows, len(shown), len(users), sortBy)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tGROUP\tSESSIONS\tTODAY\tUP\tDOWN\tMONTH\tQUOTA\tRATE DOWN\tRATE UP\tTHROTTLED\t")
	for _, u := range shown {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1fs\t\n",
			userLabel(u.User), dash(u.Group), sessionsLabel(u.Sessions),
			humanBytes(u.Today.Total), humanBytes(u.Today.Upload), humanBytes(u.Today.Download),
			humanBytes(u.Month.Total), quotaLabel(u.Quota),
			humanRate(u.Rate.Download), humanRate(u.Rate.Upload), u.ThrottledSeconds)
	}
	tw.Flush()
}

func userLabel(u string) string {
	if u == "" {
		return "(anonymous)"
	}
	return u
}

func dash(s string) string { return cmp.Or(s, "-") }

func sessionsLabel(ss []usagestore.SessionCount) string {
	if len(ss) == 0 {
		return "-"
	}
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = fmt.Sprintf("%d %s/%s", s.Count, s.Front, s.Command)
	}
	return strings.Join(parts, ", ")
}

// quotaLabel says where a user stands: over (and what follows), or the fuller
// allowance's share used and what is left.
func quotaLabel(q *usagestore.QuotaReport) string {
	switch {
	case q == nil:
		return "-"
	case q.Over && q.OverRate == 0:
		return "OVER " + q.OverPeriod + ", refused"
	case q.Over:
		return fmt.Sprintf("OVER %s, %s", q.OverPeriod, humanRate(float64(q.OverRate)))
	}
	label, share := "", -1.0
	for _, a := range []struct {
		name string
		a    *usagestore.Allowance
	}{{"daily", q.Daily}, {"monthly", q.Monthly}} {
		if a.a != nil && a.a.Limit > 0 {
			if s := float64(a.a.Used) / float64(a.a.Limit); s > share {
				share, label = s, fmt.Sprintf("%s %.0f%% (%s left)", a.name, 100*s, humanBytes(a.a.Left))
			}
		}
	}
	return cmp.Or(label, "-")
}

// humanBytes writes n in binary units with one decimal.
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, units := float64(n), []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// humanRate writes bytes per second as bits per second, as link speeds are.
func humanRate(bytesPerSecond float64) string {
	v := bytesPerSecond * 8
	for _, u := range []struct {
		name string
		size float64
	}{{"Gbit/s", 1e9}, {"Mbit/s", 1e6}, {"kbit/s", 1e3}} {
		if v >= u.size {
			return fmt.Sprintf("%.1f %s", v/u.size, u.name)
		}
	}
	return fmt.Sprintf("%.0f bit/s", v)
}
