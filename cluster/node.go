package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Period is how often an instance reports its demand and reads the others':
// often enough that a limit is split anew within a second of a change in demand,
// seldom enough that Redis sees few commands (a pipeline of four and one MGET per
// period and instance).
const Period = 250 * time.Millisecond

// liveFor is how long an instance counts as live after its last report: three
// periods, so that one late report does not make it vanish and come back.
const liveFor = 3 * Period

// Report is what an instance tells the others each period.
type Report struct {
	// Buckets is the demand on each limited bucket that moved bytes or had
	// sessions waiting, by the bucket's key (the same on every instance).
	Buckets map[string]Demand `json:"b,omitempty"`
	// Sessions is the instance's live sessions per user, for
	// limits.max_sessions_per_user across instances.
	Sessions map[string]int `json:"s,omitempty"`
	// Usage is what the instance counted of its users' bytes since its last
	// report; it goes to the cluster's totals, not to the other instances.
	Usage *Usage `json:"-"`
}

// View is what an instance knows of the others after an exchange.
type View struct {
	// Connected says the last exchange with Redis worked; when false the
	// other fields are those of the last exchange that did.
	Connected bool
	// Peers is the number of live instances, this one included (at least 1).
	Peers int
	// Others are the other live instances' reports, by instance name.
	Others map[string]Report
	// Usage is the cluster's totals of the users the report's Usage named;
	// nil when it named none or the exchange failed.
	Usage *UsageTotals
}

// Source is the instance's side: it makes the report and applies the view.
// shaping.Registry implements it.
type Source interface {
	// Report returns the demand of the period that just ended.
	Report() Report
	// Apply takes the view after an exchange (or a failed one).
	Apply(self string, v View)
}

// Recorder receives the node's metrics; *metrics.Metrics implements it.
type Recorder interface {
	// ClusterExchange observes one exchange's round trip.
	ClusterExchange(ok bool, d time.Duration)
	// ClusterPeers sets the number of live instances after an exchange.
	ClusterPeers(n int)
	// ClusterOutage counts Redis becoming unreachable.
	ClusterOutage()
}

// Options configure a [Node].
type Options struct {
	// URL is redis:// or rediss:// (TLS), as go-redis parses it.
	URL string
	// PasswordFile, when set, holds the Redis password (AUTH), read at start.
	PasswordFile string
	// Name is this instance's name, unique in the cluster.
	Name string
	// Prefix begins every key; "sockshaper" when empty.
	Prefix   string
	Logger   *slog.Logger
	Recorder Recorder
}

// Node exchanges reports with the other instances through Redis. Create it with
// [New]; run it with [Node.Run].
type Node struct {
	rdb    *redis.Client
	name   string
	prefix string
	log    *slog.Logger
	rec    Recorder

	mu   sync.Mutex
	last View // the view of the last exchange that worked
	down bool // the last exchange failed
}

// New returns a Node for opts. It does not connect: the first exchange does, and
// an instance starts whether Redis answers or not.
func New(opts Options) (*Node, error) {
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("cluster.redis: %w", err)
	}
	if opts.PasswordFile != "" {
		b, err := os.ReadFile(opts.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("cluster.redis_password_file: %w", err)
		}
		ro.Password = strings.TrimSpace(string(b))
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = Period, Period, Period
	ro.MaxRetries = -1 // a failed exchange is retried next period, with fresh data
	n := &Node{rdb: redis.NewClient(ro), name: opts.Name, prefix: opts.Prefix, log: opts.Logger, rec: opts.Recorder,
		last: View{Peers: 1}}
	if n.prefix == "" {
		n.prefix = "sockshaper"
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	return n, nil
}

// Name returns the instance's name.
func (n *Node) Name() string { return n.name }

// Close closes the connection to Redis.
func (n *Node) Close() error { return n.rdb.Close() }

// Run exchanges reports every Period until ctx ends, and hands each view to src.
func (n *Node) Run(ctx context.Context, src Source) {
	t := time.NewTicker(Period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			src.Apply(n.name, n.Exchange(ctx, src.Report()))
		}
	}
}

// Exchange writes r as this instance's report and returns the view of the live
// instances. When Redis cannot be reached it returns the last view it had, marked
// not connected, and logs the outage once (and the return once).
func (n *Node) Exchange(ctx context.Context, r Report) View {
	start := time.Now()
	v, err := n.exchange(ctx, r, start)
	if n.rec != nil {
		n.rec.ClusterExchange(err == nil, time.Since(start))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		if !n.down {
			if n.rec != nil {
				n.rec.ClusterOutage()
			}
			n.log.Warn("redis unreachable: limits fall back to an equal part per instance last known", "err", err, "peers", n.last.Peers)
		}
		n.down = true
		v = n.last
		v.Connected, v.Usage = false, nil
		return v
	}
	if n.down {
		n.log.Info("redis reachable again: limits shared by demand", "peers", v.Peers)
	}
	n.down = false
	n.last = v
	n.last.Usage = nil
	if n.rec != nil {
		n.rec.ClusterPeers(v.Peers)
	}
	return v
}

func (n *Node) exchange(ctx context.Context, r Report, now time.Time) (View, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return View{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, Period)
	defer cancel()
	members := n.prefix + ":members"
	var live *redis.StringSliceCmd
	var usage *redis.Cmd
	_, err = n.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, n.reportKey(n.name), body, liveFor)
		p.ZAdd(ctx, members, redis.Z{Score: float64(now.UnixMilli()), Member: n.name})
		p.ZRemRangeByScore(ctx, members, "-inf", fmt.Sprint(now.Add(-liveFor).UnixMilli()))
		live = p.ZRange(ctx, members, 0, -1)
		if r.Usage != nil {
			usage = n.addUsage(ctx, p, r.Usage)
		}
		return nil
	})
	if err != nil {
		return View{}, err
	}
	v, err := n.read(ctx, live.Val())
	if err != nil || usage == nil {
		return v, err
	}
	v.Usage, err = usageTotals(r.Usage, usage)
	return v, err
}

// read fetches the other live instances' reports.
func (n *Node) read(ctx context.Context, names []string) (View, error) {
	v := View{Connected: true, Peers: 1, Others: map[string]Report{}}
	var keys, others []string
	for _, name := range names {
		if name != n.name {
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
		var r Report
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return View{}, errors.Join(fmt.Errorf("report of %s", others[i]), err)
		}
		v.Others[others[i]] = r
	}
	v.Peers = 1 + len(v.Others)
	return v, nil
}

func (n *Node) reportKey(name string) string { return n.prefix + ":report:" + name }
