package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sockshaper/sockshaper/metrics"
)

// errAnswer is a script's answer of an unexpected shape.
var errAnswer = errors.New("cluster: unexpected answer from redis")

// exchange writes r and reads the view. joined reports that this instance was
// not among the members: at its start, after Redis lost its data, or after it
// was too slow to stay live; its session slots are then written anew.
func (n *Node) exchange(ctx context.Context, r Report, now time.Time) (v View, joined bool, err error) {
	body, err := json.Marshal(r)
	if err != nil {
		return View{}, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, Period)
	defer cancel()
	members := n.prefix + ":members"
	var added *redis.IntCmd
	var live *redis.StringSliceCmd
	var usage *redis.Cmd
	cmds, err := n.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, n.reportKey(n.name), body, liveFor)
		added = p.ZAdd(ctx, members, redis.Z{Score: float64(now.UnixMilli()), Member: n.name})
		p.ZRemRangeByScore(ctx, members, "-inf", fmt.Sprint(now.Add(-liveFor).UnixMilli()))
		live = p.ZRangeByScore(ctx, members, liveRange(now))
		if r.Usage != nil {
			usage = n.addUsage(ctx, p, r.Usage)
		}
		return nil
	})
	// The usage script's own failure is not an outage: see usageTotals. Any
	// other failure is, whether a command's or the connection's (a refused
	// AUTH fails the pipeline and none of its commands).
	if err != nil && (usage == nil || !errors.Is(usage.Err(), err)) {
		return View{}, false, n.wrongType(ctx, members, err)
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && c != redis.Cmder(usage) {
			return View{}, false, n.wrongType(ctx, members, err)
		}
	}
	if v, err = n.read(ctx, live.Val()); err != nil {
		return View{}, false, err
	}
	if usage != nil {
		v.Usage = n.usageTotals(r.Usage, usage)
	}
	return v, added.Val() == 1, nil
}

// liveRange selects the members that reported within liveFor, and no later
// than liveFor ahead, at most maxPeers of them.
func liveRange(now time.Time) *redis.ZRangeBy {
	return &redis.ZRangeBy{Min: fmt.Sprint(now.Add(-liveFor).UnixMilli()), Max: fmt.Sprint(now.Add(liveFor).UnixMilli()),
		Count: maxPeers}
}

// wrongType deletes the members list when it is not a sorted set (nothing an
// instance writes): the next exchange starts it anew. It returns err.
func (n *Node) wrongType(ctx context.Context, members string, err error) error {
	if !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		return err
	}
	n.rec.ClusterBadReport(metrics.ClusterBadMalformed)
	n.log.Warn("cluster members list of the wrong type in redis: deleted", "key", members)
	n.rdb.Del(ctx, members)
	return err
}

// read fetches the other live instances' reports. A report that cannot be used
// is skipped, counted, and logged once per instance until it can be used
// again; the other reports are used.
func (n *Node) read(ctx context.Context, names []string) (View, error) {
	v := View{Connected: true, Peers: 1, Others: map[string]Report{}}
	var keys, others []string
	for _, name := range names {
		switch {
		case len(name) > MaxNameLen:
			n.badReport(name[:MaxNameLen], metrics.ClusterBadMalformed, fmt.Errorf("instance name of %d bytes", len(name)))
		case name != n.name:
			keys, others = append(keys, n.reportKey(name)), append(others, name)
		}
	}
	if len(keys) == 0 {
		return v, nil
	}
	vals, err := n.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return View{}, err
	}
	for i, val := range vals {
		s, ok := val.(string)
		if !ok {
			continue // expired since the member list was read
		}
		r, reason, err := decodeReport([]byte(s))
		n.badReport(others[i], reason, err)
		if reason != metrics.ClusterBadMalformed {
			v.Others[others[i]] = r
		}
	}
	v.Peers = 1 + len(v.Others)
	return v, nil
}

// badReport counts and logs what decodeReport found wrong in the report of
// peer, if anything: the log once per peer, until its reports are good again.
func (n *Node) badReport(peer, reason string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if reason == "" {
		delete(n.warned, peer)
		return
	}
	n.rec.ClusterBadReport(reason)
	if n.warned[peer] || len(n.warned) >= maxPeers {
		return
	}
	n.warned[peer] = true
	n.log.Warn("peer report skipped", "instance", peer, "reason", reason, "err", err)
}

func (n *Node) reportKey(name string) string { return n.prefix + ":report:" + name }
