package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (r *campusResult) table(w io.Writer) {
	m := r.Mix
	fmt.Fprintf(w, "campus via %s: %d users on %d addresses (%d per address), %d windows of %.0f s after a %.0f s warm-up\n",
		r.Via, r.Users, r.Addresses, m.UsersPerAddr, len(r.Windows), m.WindowSecs, m.WarmupSecs)
	fmt.Fprintf(w, "mix: hogs %d × %d downloads (no limit of their own), heavy users %d × %d, downloaders %d × %d, callers %d (a TCP and a UDP flow of 64-256 kbit/s), skype bulk %d; every user browses every %.3g s\n",
		m.Hogs, m.HogSessions, m.Heavy, m.HeavySessions, m.Downloaders, m.DlSessions, m.Callers, m.SkypeBulk, m.BrowseEvery)
	fmt.Fprintf(w, "background: %d slowloris connections from %d addresses, %d unauthenticated HTTP keep-alive connections from %d addresses (a request each per %.3g s), %d guessers from %d addresses (one try per %.3g s each)\n",
		m.Slowloris, m.SlowlorisAddrs, m.KeepAlive, m.KeepAliveAddrs, m.KeepAliveEvery, m.Guessers, m.GuessAddrs, m.GuessEvery)
	fmt.Fprintf(w, "limits: students %.3g Mbit/s per user, skype %.3g Mbit/s per user, global %.4g Mbit/s (a fair share of %.3g per user); the mix offers %.4g Mbit/s of download besides the hogs\n",
		r.Limits.Student, r.Limits.Skype, r.Limits.Global, r.Limits.GlobalShare, r.OfferedMbps)
	fmt.Fprintf(w, "flows: %d of %d opened in %.1f s; warm-up logins p50 %.1f ms, p99 %.1f ms; warm-up errors %v\n\n",
		r.Opened, r.Flows, r.OpenSecs, r.Warmup.Logins.P50, r.Warmup.Logins.P99, countList(r.Warmup.Errors))
	r.healthTable(w)
	fmt.Fprintln(w)
	r.limitsTable(w)
	s := r.Summary
	fmt.Fprintf(w, "\nstarved: %d flow-windows, at most %d in one window, %d distinct flows; %d flows ended\n",
		s.StarvedSum, s.StarvedMax, s.StarvedFlows, s.Ended)
	fmt.Fprintf(w, "browse: %d sessions (%.1f/s), session p50 %.1f ms, p99 %.1f ms; real logins p50 %.1f ms, p99 %.1f ms\n",
		s.Browse.Sessions, s.Browse.PerSecond, s.Browse.SessionTime.P50, s.Browse.SessionTime.P99, s.Logins.P50, s.Logins.P99)
	fmt.Fprintf(w, "guesses: %d (%.1f/s) %v, answer p50 %.1f ms, p99 %.1f ms\n",
		s.Guesses.Attempts, s.Guesses.PerSecond, countList(s.Guesses.Outcomes), s.Guesses.AnswerTime.P50, s.Guesses.AnswerTime.P99)
	fmt.Fprintf(w, "keep-alive: answers %v (%.1f/s), %d connections closed by the proxy (held p50 %.1f s)\n",
		countList(s.KeepAlive.Answers), s.KeepAlive.PerSecond, s.KeepAlive.Closed, s.KeepAlive.HeldP50)
	fmt.Fprintf(w, "errors: %v\n", countList(s.Errors))
	fmt.Fprintf(w, "proxy: CPU %.1f%% of a core (mean), RSS up to %.1f MiB, up to %d descriptors; sockbench itself: CPU %.1f%% of a core\n",
		s.ProxyCPU, s.ProxyRSSMax, s.ProxyFDsMax, s.ToolCPU)
}

func (r *campusResult) healthTable(w io.Writer) {
	tw := newTable(w)
	fmt.Fprintln(tw, "window\tstarved\theavy/dl/bulk/tcp/udp/hog\tended\tbrowse/s\tlogin p50 ms\tp99 ms\terrors\tguesses/s\tguess p50 ms\tslowloris open\tclosed\tkeep-alive open\tanswers/s\tclosed\tproxy CPU%\tRSS MiB\tfds\ttool CPU%\t")
	for _, win := range r.Windows {
		kinds := make([]string, 0, flowKinds)
		for k := range flowKinds {
			kinds = append(kinds, strconv.Itoa(win.Starved[k.String()]))
		}
		errs := 0
		for _, n := range win.Errors {
			errs += n
		}
		cpu, rss, fds := "-", "-", "-"
		if p := win.Proxy; p != nil {
			cpu, rss, fds = fmt.Sprintf("%.1f", p.CPUPercent), fmt.Sprintf("%.1f", p.RSSMiB), strconv.Itoa(p.FDs)
		}
		ka := win.KeepAlive
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%.1f\t%.1f\t%.1f\t%d\t%.1f\t%.1f\t%d\t%d\t%d\t%.1f\t%d\t%s\t%s\t%s\t%.1f\t\n",
			win.Index, win.StarvedTotal, strings.Join(kinds, "/"), win.Ended, win.Browse.PerSecond,
			win.Logins.P50, win.Logins.P99, errs, win.Guesses.PerSecond, win.Guesses.AnswerTime.P50,
			win.Slowloris.Open, win.Slowloris.Closed, ka.Open, ka.PerSecond, ka.Closed, cpu, rss, fds, win.ToolCPU)
	}
	tw.Flush()
}

func (r *campusResult) limitsTable(w io.Writer) {
	tw := newTable(w)
	fmt.Fprintf(tw, "window\tglobal Mbit/s (cap %.4g)\tstudents mean\tmin\tmax\tCV\theavy mean\tmin\tmax\thogs mean\tmin\tmax\tskype bulk mean\tmin\tmax\tcalls got/offered\tmin\tUDP loss\t\n", r.Limits.Global)
	for _, win := range r.Windows {
		st, hv, hg, sb := win.Students, win.Heavy, win.Hogs, win.SkypeBulk
		fmt.Fprintf(tw, "%d\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f%%\t\n",
			win.Index, win.GlobalMbps, st.Mean, st.Min, st.Max, st.CV, hv.Mean, hv.Min, hv.Max, hg.Mean, hg.Min, hg.Max,
			sb.Mean, sb.Min, sb.Max, win.Calls.AchievedMean, win.Calls.AchievedMin, win.Calls.UDPLoss*100)
	}
	tw.Flush()
	if len(r.Windows) > 0 {
		w0 := r.Windows[0]
		fmt.Fprintf(w, "expected per user (the global cap shared max-min between users, whatever their sessions): students %.3f, heavy %.3f, hogs %.3f, skype bulk %.3f Mbit/s\n",
			w0.Students.Expected, w0.Heavy.Expected, w0.Hogs.Expected, w0.SkypeBulk.Expected)
	}
}

// countList formats counts as "(a 2, b 1)" sorted by key, or "none".
func countList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	return stepList(m)
}

// scrapeTimeout bounds a metrics scrape: a proxy that cannot answer within it
// is busy, and its window shows no auth figures rather than a late one.
const scrapeTimeout = 5 * time.Second

// authMetric is the counter of the proxy's logins by result.
const authMetric = "sockshaper_auth_attempts_total"

// scrapeAuthAttempts reads the proxy's logins by result from its metrics page.
func scrapeAuthAttempts(url string) (map[string]float64, error) {
	client := http.Client{Timeout: scrapeTimeout}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return parseCounterByLabel(resp.Body, authMetric, "result")
}

// parseCounterByLabel returns the values of metric's series in Prometheus text
// format by the value of label.
func parseCounterByLabel(r io.Reader, metric, label string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), metric+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", metric, err)
		}
		for _, kv := range strings.Split(labels, ",") {
			if k, val, ok := strings.Cut(kv, "="); ok && k == label {
				out[strings.Trim(val, `"`)] += v
			}
		}
	}
	return out, sc.Err()
}
