package main

import (
	"context"
	"slices"
	"time"
)

// flowSnap is one flow's counters at a window edge.
type flowSnap struct {
	bytes, sent   int64
	opened, ended int64 // UnixNano; 0: not yet
}

// snapshot is every flow's counters at one moment.
type snapshot struct {
	at    time.Time
	flows []flowSnap
}

func (cs *campus) snapshot() snapshot {
	s := snapshot{at: time.Now(), flows: make([]flowSnap, len(cs.flows))}
	for i, f := range cs.flows {
		s.flows[i] = flowSnap{bytes: f.bytes.Load(), sent: f.sent.Load(), opened: f.opened.Load(), ended: f.ended.Load()}
	}
	return s
}

// measure reports a window every -window until -duration has passed. The
// events of the warm-up (the first logins, errors while opening) go to r too.
func (cs *campus) measure(ctx context.Context, r *campusResult) error {
	prev, err := cs.edge()
	if err != nil {
		return err
	}
	cs.start = prev.snap.at
	r.setWarmup(prev.events)
	starvedEver := make([]bool, len(cs.flows))
	n := int(cs.o.duration / cs.o.campus.window)
	for k := 1; k <= n; k++ {
		if !sleepCtx(ctx, time.Until(prev.snap.at.Add(cs.o.campus.window))) {
			return ctx.Err()
		}
		cur, err := cs.edge()
		if err != nil {
			return err
		}
		w := cs.window(k, prev, cur, starvedEver)
		r.add(w, cur.events)
		prev = cur
	}
	r.finish(starvedEver)
	return nil
}

// windowEdge is everything read at a window's edge.
type windowEdge struct {
	snap   snapshot
	events windowEvents // since the previous edge
	procs  procSample
	auth   map[string]float64 // the proxy's auth attempts by result; nil without -metrics
}

func (cs *campus) edge() (windowEdge, error) {
	e := windowEdge{snap: cs.snapshot(), events: cs.events.take()}
	var err error
	if e.procs, err = cs.sampleProcs(); err != nil {
		return e, err
	}
	if cs.o.campus.metrics != "" {
		e.auth, err = scrapeAuthAttempts(cs.o.campus.metrics)
		if err != nil {
			cs.log.Warn("metrics", "err", err)
		}
	}
	return e, nil
}

// window computes window k from its two edges; flows that starve in it are
// marked in starvedEver.
func (cs *campus) window(k int, prev, cur windowEdge, starvedEver []bool) campusWindow {
	secs := cur.snap.at.Sub(prev.snap.at).Seconds()
	w := campusWindow{Index: k, Start: prev.snap.at.Sub(cs.start).Seconds(), Seconds: secs,
		Tracked: map[string]int{}, Starved: map[string]int{}}
	acc := newFlowAccount()
	for i, f := range cs.flows {
		p, c := prev.snap.flows[i], cur.snap.flows[i]
		delta := c.bytes - p.bytes
		acc.total += delta
		if c.ended != 0 && c.ended > prev.snap.at.UnixNano() {
			w.Ended++
		}
		if p.opened == 0 || c.ended != 0 {
			continue // not running for the whole window
		}
		w.Tracked[f.kind.String()]++
		if delta == 0 {
			w.Starved[f.kind.String()]++
			w.StarvedTotal++
			starvedEver[i] = true
		}
		acc.add(f, delta, c.sent-p.sent)
	}
	ev := cur.events
	w.GlobalMbps = mbps(float64(acc.total+ev.browseBytes) / secs)
	w.Students = acc.spread(flowDownload, secs, cs.expected.download, cs.limits.Student)
	w.Heavy = acc.spread(flowHeavy, secs, cs.expected.heavy, cs.limits.Student)
	w.SkypeBulk = acc.spread(flowBulk, secs, cs.expected.bulk, cs.limits.Skype)
	w.Hogs = acc.spread(flowHog, secs, cs.expected.hog, cs.limits.Global)
	w.Calls = acc.calls(secs)
	w.setEvents(ev, secs, cs.events.slowOpen.Load())
	w.KeepAlive = keepFiguresOf(ev, secs, cs.events.keepOpen.Load())
	w.setProcs(prev.procs, cur.procs)
	w.AuthAttempts = countDeltas(prev.auth, cur.auth)
	return w
}

// flowAccount adds up one window's bytes by kind and user.
type flowAccount struct {
	total   int64
	byUser  [flowKinds]map[int]int64
	offered map[int]int64 // callers: bytes/s offered, TCP and UDP
	udpSent int64
	udpGot  int64
}

func newFlowAccount() *flowAccount {
	a := &flowAccount{offered: map[int]int64{}}
	for k := range a.byUser {
		a.byUser[k] = map[int]int64{}
	}
	return a
}

func (a *flowAccount) add(f *flow, delta, sent int64) {
	a.byUser[f.kind][f.user] += delta
	if f.kind == flowCallTCP || f.kind == flowCallUDP {
		a.offered[f.user] += f.offered
	}
	if f.kind == flowCallUDP {
		a.udpSent += sent
		a.udpGot += delta
	}
}

// spread returns the per-user rates of kind's users against a limit (bytes/s).
func (a *flowAccount) spread(kind flowKind, secs, expected, setting float64) rateSpread {
	var rates []float64
	for _, b := range a.byUser[kind] {
		rates = append(rates, mbps(float64(b)/secs))
	}
	s := rateSpread{Users: len(rates), Setting: mbps(setting), Expected: mbps(expected)}
	if len(rates) > 0 {
		s.Mean, s.Min, s.Max, s.CV = mean(rates), slices.Min(rates), slices.Max(rates), cv(rates)
	}
	return s
}

// calls returns the callers' achieved share of what they offered.
func (a *flowAccount) calls(secs float64) callFigures {
	var ratios []float64
	var offered float64
	for u, o := range a.offered {
		got := a.byUser[flowCallTCP][u] + a.byUser[flowCallUDP][u]
		offered += float64(o)
		ratios = append(ratios, float64(got)/(float64(o)*secs))
	}
	c := callFigures{Callers: len(ratios), OfferedMbps: mbps(offered)}
	if len(ratios) > 0 {
		c.AchievedMean, c.AchievedMin = mean(ratios), slices.Min(ratios)
	}
	if a.udpSent > 0 {
		c.UDPLoss = max(0, 1-float64(a.udpGot)/float64(a.udpSent))
	}
	return c
}

// mbps converts bytes/s to Mbit/s.
func mbps(bytesPerSec float64) float64 { return bytesPerSec * 8 / 1e6 }

// countDeltas returns cur minus prev by key, or nil when either is missing.
func countDeltas(prev, cur map[string]float64) map[string]float64 {
	if prev == nil || cur == nil {
		return nil
	}
	out := map[string]float64{}
	for k, v := range cur {
		out[k] = v - prev[k]
	}
	return out
}
