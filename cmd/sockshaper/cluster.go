package main

import (
	"context"

	"github.com/sockshaper/sockshaper/cluster"
	"github.com/sockshaper/sockshaper/proxy"
	"github.com/sockshaper/sockshaper/shaping"
	usagestore "github.com/sockshaper/sockshaper/usage"
)

// newCluster makes the node that shares limits through cluster.redis, nil when
// the config names none. It does not connect: Redis need not answer, and the
// instance serves alone until it does. cluster.* changes take effect at restart.
func newCluster(d *daemon) (*cluster.Node, error) {
	c := d.cfg.Cluster
	if c.Redis == "" {
		return nil, nil
	}
	return cluster.New(cluster.Options{URL: c.Redis, PasswordFile: c.RedisPasswordFile, Name: c.Name,
		Logger: d.log.With("component", "cluster"), Recorder: d.metrics})
}

// runCluster exchanges reports with the other instances until ctx ends.
func (d *daemon) runCluster(ctx context.Context) {
	if d.node == nil {
		return
	}
	defer d.node.Close()
	d.log.Info("sharing limits with the other instances through redis", "name", d.node.Name(), "period", cluster.Period)
	d.node.Run(ctx, &clusterSource{shaper: d.shaper, server: d.server, usage: d.usage})
}

// clusterSource is the instance's side of the exchange: the buckets' demand
// from the shaper, the sessions per user from the server, the bytes counted for
// quotas from the usage store, and back.
type clusterSource struct {
	shaper  *shaping.Registry
	server  *proxy.Server
	usage   *usagestore.Store
	reports int // exchanges so far
}

func (s *clusterSource) Report() cluster.Report {
	r := s.shaper.Report()
	r.Sessions = s.server.UserSessions()
	if s.reports++; s.reports%usageEvery == 0 {
		r.Usage = s.usage.Shared()
	}
	return r
}

// usageEvery spaces the usage counts sent to Redis: once a second (every fourth
// exchange) holds quotas across instances to within a second of traffic, and
// the script that adds them runs eight hash operations per user with new bytes.
const usageEvery = 4

// Apply takes each bucket's part and the other instances' sessions per user. A
// view of a Redis outage keeps the peers' last session counts: they are still
// the best guess of what the other instances hold.
func (s *clusterSource) Apply(self string, v cluster.View) {
	s.shaper.Apply(self, v)
	s.usage.Settle(v.Usage)
	peers := map[string]int{}
	for _, r := range v.Others {
		for user, n := range r.Sessions {
			peers[user] += n
		}
	}
	s.server.SetPeerSessions(peers)
}
