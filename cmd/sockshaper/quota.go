package main

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy"
	usagestore "github.com/sockshaper/sockshaper/usage"
)

// quotaEvent follows a user going over an allowance or back under: it counts
// the crossing and applies the user's own limit again, so that their live
// sessions move to (or off) the over-quota rate at once. Over a refusing quota
// (over_rate 0) their new sessions are refused (the core admits through the
// store) and their live ones are cut here; the store is asked again first,
// since an event may arrive after the period turned.
func (d *daemon) quotaEvent(ev usagestore.Event) {
	if ev.Over {
		d.metrics.QuotaExceeded(ev.Group)
	}
	d.shaper.RefreshUser(ev.User)
	if ev.Over && ev.OverRate == 0 && d.server != nil && d.usage.Refuses(ev.User) {
		go d.server.CutUser(ev.User, metrics.ResetQuota)
	}
}

// closeUsage writes the usage a last time and releases state_dir.
func (d *daemon) closeUsage() {
	if err := d.usage.Close(); err != nil {
		d.log.Error("writing usage state at shutdown failed", "err", err)
	}
}

// readiness is /readyz's: ready while serving; a failing usage state_dir (a
// full disk) is a note, not a reason to take traffic away (it would be on
// every instance sharing the disk's fate).
func (d *daemon) readiness() (bool, []string) {
	if p := d.usage.StateHealth().Problem(); p != "" {
		return d.ready.Load(), []string{p}
	}
	return d.ready.Load(), nil
}

// registerUsageState exports how keeping usage in state_dir goes, when the
// config keeps it (a state_dir change takes a restart).
func (d *daemon) registerUsageState(reg prometheus.Registerer) {
	if d.cfg.StateDir == "" {
		return
	}
	reg.MustRegister(metrics.NewUsageStateCollector(func() metrics.UsageState {
		h := d.usage.StateHealth()
		st := metrics.UsageState{WriteFailures: h.WriteFailures, LastWrite: h.LastWrite, EntriesSetAside: uint64(h.EntriesSetAside)}
		if h.FileSetAside {
			st.FilesSetAside = 1
		}
		return st
	}))
}

// checkStateDir checks cfg's state_dir as the daemon's start would, without
// creating or locking anything.
func checkStateDir(cfg *configs.Config) error {
	if cfg.StateDir == "" {
		return nil
	}
	return usagestore.CheckStateDir(cfg.StateDir)
}

// quotaGroups returns the groups of cfg with a quota, for their metric series.
func quotaGroups(cfg *configs.Config) []string {
	var groups []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Shaping.Groups)) {
		if q := cfg.Shaping.Groups[name].Quota; q != nil && q.Limited() {
			groups = append(groups, name)
		}
	}
	return groups
}

// usageRecorder is the metrics recorder that also counts each user's bytes in
// the usage store. The proxy reports relayed bytes, TCP and UDP, at its relay's
// flush points (every 256 KiB or 5 s per direction) through Transferred: that
// is where quotas and the usage view see them.
type usageRecorder struct {
	proxy.Recorder
	usage *usagestore.Store
}

// Transferred counts n bytes in the metrics and in user's usage.
func (r usageRecorder) Transferred(user, app, direction, transport string, n int64) {
	r.Recorder.Transferred(user, app, direction, transport, n)
	if direction == metrics.DirectionUpload {
		r.usage.Add(user, n, 0)
	} else {
		r.usage.Add(user, 0, n)
	}
}
