package main

import (
	"slices"
	"time"
)

// campusResult is what a campus run measured: the mix, the limits, one entry per
// window and a summary. Rates are Mbit/s (decimal), as limits are written.
type campusResult struct {
	Scenario    string         `json:"scenario"`
	Via         string         `json:"via"`
	Users       int            `json:"users"`
	Addresses   int            `json:"client_addresses"`
	Mix         campusMixInfo  `json:"mix"`
	Limits      limitsMbps     `json:"limits_mbps"`
	OfferedMbps float64        `json:"offered_download_mbps"`
	Flows       int            `json:"flows"`
	Opened      int            `json:"flows_opened"`
	OpenSecs    float64        `json:"open_seconds"`
	Warmup      warmupFigures  `json:"warmup"`
	Windows     []campusWindow `json:"windows"`
	Summary     campusSummary  `json:"summary"`

	cs        *campus
	logins    []time.Duration
	sessions  []time.Duration
	guessTime []time.Duration
	keepHeld  []time.Duration
}

// campusMixInfo is the mix and the background, as run.
type campusMixInfo struct {
	UsersPerAddr   int     `json:"users_per_addr"`
	Hogs           int     `json:"hogs"`
	HogSessions    int     `json:"hog_sessions"`
	Heavy          int     `json:"heavy_users"`
	HeavySessions  int     `json:"heavy_sessions"`
	Downloaders    int     `json:"downloaders"`
	DlSessions     int     `json:"download_sessions"`
	Callers        int     `json:"callers"`
	SkypeBulk      int     `json:"skype_bulk_users"`
	BrowseEvery    float64 `json:"browse_every_seconds"`
	Slowloris      int     `json:"slowloris"`
	SlowlorisAddrs int     `json:"slowloris_addrs"`
	KeepAlive      int     `json:"keepalive_conns"`
	KeepAliveAddrs int     `json:"keepalive_addrs"`
	KeepAliveEvery float64 `json:"keepalive_every_seconds"`
	Guessers       int     `json:"guessers"`
	GuessAddrs     int     `json:"guess_addrs"`
	GuessEvery     float64 `json:"guess_every_seconds"`
	WindowSecs     float64 `json:"window_seconds"`
	WarmupSecs     float64 `json:"warmup_seconds"`
}

type limitsMbps struct {
	Student float64 `json:"student_per_user"`
	Skype   float64 `json:"skype_per_user"`
	Global  float64 `json:"global"`
	// GlobalShare is the max-min fair share of the global cap of each user
	// who wants more: what a hog should get (0: the cap does not bind).
	GlobalShare float64 `json:"global_fair_share_per_user"`
}

// warmupFigures are the logins and errors before the first window: mostly the
// first logins of the long-lived flows, each a bcrypt check.
type warmupFigures struct {
	Logins latencySummary `json:"logins"`
	Errors map[string]int `json:"errors,omitempty"`
}

// campusWindow is one report window.
type campusWindow struct {
	Index   int     `json:"index"`
	Start   float64 `json:"start_seconds"`
	Seconds float64 `json:"seconds"`
	// Tracked are the flows that ran the whole window, by kind; Starved those of
	// them that moved no byte although their source always has data.
	Tracked      map[string]int     `json:"tracked"`
	Starved      map[string]int     `json:"starved"`
	StarvedTotal int                `json:"starved_total"`
	Ended        int                `json:"flows_ended"`
	GlobalMbps   float64            `json:"global_download_mbps"`
	Students     rateSpread         `json:"students"`
	Heavy        rateSpread         `json:"heavy"`
	SkypeBulk    rateSpread         `json:"skype_bulk"`
	Hogs         rateSpread         `json:"hogs"`
	Calls        callFigures        `json:"calls"`
	Browse       browseFigures      `json:"browse"`
	Logins       latencySummary     `json:"logins"`
	Guesses      guessFigures       `json:"guesses"`
	Slowloris    slowFigures        `json:"slowloris"`
	KeepAlive    keepFigures        `json:"keepalive"`
	Errors       map[string]int     `json:"errors,omitempty"`
	Proxy        *procFigures       `json:"proxy,omitempty"`
	ToolCPU      float64            `json:"tool_cpu_percent"`
	AuthAttempts map[string]float64 `json:"proxy_auth_attempts,omitempty"`
}

// rateSpread is the per-user rates of the users on one limit: the setting, the
// share the water-filling of the global cap expects, and what they got.
type rateSpread struct {
	Users    int     `json:"users"`
	Setting  float64 `json:"setting_mbps"`
	Expected float64 `json:"expected_mbps"`
	Mean     float64 `json:"mean_mbps"`
	Min      float64 `json:"min_mbps"`
	Max      float64 `json:"max_mbps"`
	CV       float64 `json:"cv"`
}

// callFigures are the calls' achieved share of what their sources offered (1 is
// all of it) and the share of UDP payload that did not come back.
type callFigures struct {
	Callers      int     `json:"callers"`
	OfferedMbps  float64 `json:"offered_mbps"`
	AchievedMean float64 `json:"achieved_of_offered_mean"`
	AchievedMin  float64 `json:"achieved_of_offered_min"`
	UDPLoss      float64 `json:"udp_loss"`
}

type browseFigures struct {
	Sessions    int            `json:"sessions"`
	PerSecond   float64        `json:"per_second"`
	SessionTime latencySummary `json:"session_time"`
}

type guessFigures struct {
	Attempts   int            `json:"attempts"`
	PerSecond  float64        `json:"per_second"`
	Outcomes   map[string]int `json:"outcomes,omitempty"`
	AnswerTime latencySummary `json:"answer_time"`
}

type slowFigures struct {
	Open    int64   `json:"open"`
	Closed  int     `json:"closed_by_proxy"`
	HeldP50 float64 `json:"held_p50_seconds"`
}

type procFigures struct {
	CPUPercent float64 `json:"cpu_percent"`
	RSSMiB     float64 `json:"rss_mib"`
	FDs        int     `json:"fds"`
}

// campusSummary sums up the windows.
type campusSummary struct {
	Windows      int            `json:"windows"`
	StarvedSum   int            `json:"starved_flow_windows"`
	StarvedMax   int            `json:"starved_max_in_a_window"`
	StarvedFlows int            `json:"starved_flows"`
	Ended        int            `json:"flows_ended"`
	Browse       browseFigures  `json:"browse"`
	Logins       latencySummary `json:"logins"`
	Guesses      guessFigures   `json:"guesses"`
	KeepAlive    keepFigures    `json:"keepalive"`
	Errors       map[string]int `json:"errors,omitempty"`
	ProxyCPU     float64        `json:"proxy_cpu_percent_mean"`
	ProxyRSSMax  float64        `json:"proxy_rss_mib_max"`
	ProxyFDsMax  int            `json:"proxy_fds_max"`
	ToolCPU      float64        `json:"tool_cpu_percent_mean"`
}

func (r *campusResult) setWarmup(ev windowEvents) {
	r.Warmup = warmupFigures{Logins: summarize(ev.logins), Errors: cloneCounts(ev.errors)}
}

// add appends window w, whose events are ev, and adds it to the summary.
func (r *campusResult) add(w campusWindow, ev windowEvents) {
	r.Windows = append(r.Windows, w)
	s := &r.Summary
	s.Windows++
	s.StarvedSum += w.StarvedTotal
	s.StarvedMax = max(s.StarvedMax, w.StarvedTotal)
	s.Ended += w.Ended
	s.Browse.Sessions += w.Browse.Sessions
	s.Guesses.Attempts += w.Guesses.Attempts
	addCounts(s.Guesses.Outcomes, ev.guesses)
	addCounts(s.KeepAlive.Answers, ev.keepAnswers)
	r.keepHeld = append(r.keepHeld, ev.keepClosed...)
	addCounts(s.Errors, ev.errors)
	r.logins = append(r.logins, ev.logins...)
	r.sessions = append(r.sessions, ev.sessions...)
	r.guessTime = append(r.guessTime, ev.guessTimes...)
	s.ToolCPU += w.ToolCPU
	if w.Proxy != nil {
		s.ProxyCPU += w.Proxy.CPUPercent
		s.ProxyRSSMax = max(s.ProxyRSSMax, w.Proxy.RSSMiB)
		s.ProxyFDsMax = max(s.ProxyFDsMax, w.Proxy.FDs)
	}
}

// finish computes the summary's means and distributions.
func (r *campusResult) finish(starvedEver []bool) {
	s := &r.Summary
	for i, f := range r.cs.flows {
		if starvedEver[i] {
			s.StarvedFlows++
		}
		if f.opened.Load() != 0 {
			r.Opened++
		}
	}
	secs := 0.0
	for _, w := range r.Windows {
		secs += w.Seconds
	}
	if s.Windows > 0 {
		s.ProxyCPU /= float64(s.Windows)
		s.ToolCPU /= float64(s.Windows)
	}
	if secs > 0 {
		s.Browse.PerSecond = float64(s.Browse.Sessions) / secs
		s.Guesses.PerSecond = float64(s.Guesses.Attempts) / secs
	}
	s.Browse.SessionTime, s.Logins, s.Guesses.AnswerTime = summarize(r.sessions), summarize(r.logins), summarize(r.guessTime)
	s.KeepAlive = keepFiguresOf(windowEvents{keepAnswers: s.KeepAlive.Answers, keepClosed: r.keepHeld}, max(secs, 1e-9), 0)
	s.Errors = cloneCounts(s.Errors)
	s.Guesses.Outcomes = cloneCounts(s.Guesses.Outcomes)
}

// setEvents fills the window's figures from its events; slowOpen is the
// slowloris connections open at its end.
func (w *campusWindow) setEvents(ev windowEvents, secs float64, slowOpen int64) {
	w.Browse = browseFigures{Sessions: ev.browsed, PerSecond: float64(ev.browsed) / secs, SessionTime: summarize(ev.sessions)}
	w.Logins = summarize(ev.logins)
	attempts := 0
	for _, n := range ev.guesses {
		attempts += n
	}
	w.Guesses = guessFigures{Attempts: attempts, PerSecond: float64(attempts) / secs,
		Outcomes: cloneCounts(ev.guesses), AnswerTime: summarize(ev.guessTimes)}
	held := make([]float64, len(ev.slowClosed))
	for i, d := range ev.slowClosed {
		held[i] = d.Seconds()
	}
	slices.Sort(held)
	w.Slowloris = slowFigures{Open: slowOpen, Closed: len(held), HeldP50: percentile(held, 50)}
	w.Errors = cloneCounts(ev.errors)
}

// setProcs fills the CPU and memory figures from the samples at the edges.
func (w *campusWindow) setProcs(prev, cur procSample) {
	secs := cur.at.Sub(prev.at).Seconds()
	w.ToolCPU = (cur.toolCPU - prev.toolCPU) / secs * 100
	if cur.mem == nil {
		return
	}
	w.Proxy = &procFigures{CPUPercent: (cur.proxyCPU - prev.proxyCPU) / secs * 100,
		RSSMiB: float64(cur.mem.RSSKiB) / 1024, FDs: cur.mem.FDs}
}
