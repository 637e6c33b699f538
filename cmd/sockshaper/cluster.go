package main

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/sockshaper/sockshaper/cluster"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
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
	// go-redis logs through one logger for the whole process, by default to
	// stderr, outside slog: one line per failed dial, dozens per second while
	// Redis is down, which the node already reports once. Its lines go to
	// the daemon's log at debug level, a few a minute at most.
	redis.SetLogger(newRedisLogger(d.log.With("component", "redis")))
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
	d.node.Run(ctx, &clusterSource{shaper: d.shaper, usage: d.usage})
}

// userSlots is what holds max_sessions_per_user across the instances: the
// cluster's slots, or none (nil) for an instance alone.
func (d *daemon) userSlots() tunnel.UserSlots {
	if d.node == nil {
		return nil
	}
	return d.node.Slots()
}

// clusterSource is the instance's side of the exchange: the buckets' demand
// from the shaper, the bytes counted for quotas from the usage store, and back.
// (Sessions per user are shared through the cluster's slots, reserved as each
// session opens.)
type clusterSource struct {
	shaper  *shaping.Registry
	usage   *usagestore.Store
	reports int // exchanges so far
}

func (s *clusterSource) Report() cluster.Report {
	r := s.shaper.Report()
	if s.reports++; s.reports%usageEvery == 0 {
		r.Usage = s.usage.Shared()
	}
	return r
}

// usageEvery spaces the usage counts sent to Redis: once a second (every fourth
// exchange) holds quotas across instances to within a second of traffic, and
// the script that adds them runs eight hash operations per user with new bytes.
const usageEvery = 4

// Apply takes each bucket's part and the cluster's usage totals.
func (s *clusterSource) Apply(self string, v cluster.View) {
	s.shaper.Apply(self, v)
	s.usage.Settle(v.Usage)
}
