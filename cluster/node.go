package cluster

import (
	"context"
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
// periods, so that one late report does not make it vanish and come back. A
// member whose time is as far ahead (a clock off by more, or an entry written
// to never expire) is not live either.
const liveFor = 3 * Period

// peerMemory is how long an instance that cannot reach Redis goes on assuming
// that the instances it last saw still serve, and keeps to its equal part of
// every limit and session cap. Ten seconds ride out a Redis restart or a
// Sentinel failover with the split intact, and are little more than a
// balancer needs to notice a dead instance (HAProxy's checks in
// docs/deployment.md: 4 s); after them the instance counts on itself alone, so
// that the users of a peer that died during the outage get their whole limit
// and cap back.
const peerMemory = 10 * time.Second

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
	// ClusterBadReport counts a value read from Redis that was skipped or
	// replaced, by reason (metrics.ClusterBad...).
	ClusterBadReport(reason string)
	// ClusterReservation counts a session slot asked for, by result
	// (metrics.ClusterReserved...).
	ClusterReservation(result string)
}

// nopRecorder records nothing.
type nopRecorder struct{}

func (nopRecorder) ClusterExchange(bool, time.Duration) {}
func (nopRecorder) ClusterPeers(int)                    {}
func (nopRecorder) ClusterOutage()                      {}
func (nopRecorder) ClusterBadReport(string)             {}
func (nopRecorder) ClusterReservation(string)           {}

// Options configure a [Node].
type Options struct {
	// URL is redis:// or rediss:// (TLS), as go-redis parses it.
	URL string
	// PasswordFile, when set, holds the Redis password (AUTH), read at start.
	PasswordFile string
	// Name is this instance's name, unique in the cluster, at most
	// [MaxNameLen] bytes.
	Name string
	// Prefix begins every key; "sockshaper" when empty.
	Prefix string
	// Logger receives the outage and the bad reports, once each. Nil discards.
	Logger *slog.Logger
	// Recorder receives the metrics. Nil records nothing.
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

	slots *Slots
	// memory is peerMemory; tests shorten it.
	memory time.Duration

	mu     sync.Mutex
	last   View            // the view of the last exchange that worked
	lastOK time.Time       // when it started
	down   bool            // the last exchange failed
	forgot bool            // the peers of the last view have been forgotten
	warned map[string]bool // peers whose bad report was logged, until a good one
	// usageFailed says the usage script failed last time (logged once).
	usageFailed bool
}

// New returns a Node for opts. It does not connect: the first exchange does, and
// an instance starts whether Redis answers or not.
func New(opts Options) (*Node, error) {
	if opts.Name == "" || len(opts.Name) > MaxNameLen {
		return nil, fmt.Errorf("cluster.name %.32q: want 1 to %d bytes", opts.Name, MaxNameLen)
	}
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
	// Reservations are bounded by their own, shorter, context deadline.
	ro.ContextTimeoutEnabled = true
	n := &Node{rdb: redis.NewClient(ro), name: opts.Name, prefix: opts.Prefix, log: opts.Logger, rec: opts.Recorder,
		last: View{Peers: 1}, warned: map[string]bool{}, memory: peerMemory}
	if n.prefix == "" {
		n.prefix = "sockshaper"
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.rec == nil {
		n.rec = nopRecorder{}
	}
	n.slots = newSlots(n)
	return n, nil
}

// Name returns the instance's name.
func (n *Node) Name() string { return n.name }

// Close closes the connection to Redis.
func (n *Node) Close() error { return n.rdb.Close() }

// Slots returns the node's session slots, for max_sessions_per_user across the
// instances.
func (n *Node) Slots() *Slots { return n.slots }

// Run exchanges reports every Period until ctx ends, and hands each view to src;
// it writes the session slots given back meanwhile. The first exchange is at
// once, so that the other instances count this one's sessions from its start.
func (n *Node) Run(ctx context.Context, src Source) {
	go n.slots.run(ctx)
	t := time.NewTicker(Period)
	defer t.Stop()
	for {
		src.Apply(n.name, n.Exchange(ctx, src.Report()))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Exchange writes r as this instance's report and returns the view of the live
// instances. When Redis cannot be reached it returns the last view it had, marked
// not connected, and logs the outage once (and the return once); after
// peerMemory without Redis, that view is of this instance alone.
func (n *Node) Exchange(ctx context.Context, r Report) View {
	start := time.Now()
	v, joined, err := n.exchange(ctx, r, start)
	n.rec.ClusterExchange(err == nil, time.Since(start))
	v, resync := n.settle(v, joined, err, start)
	if resync {
		n.slots.resync() // not under n.mu: the slots take it under theirs
	}
	return v
}

// settle records the exchange that started at start and returns the view to
// hand on, and whether the session slots are to be written anew.
func (n *Node) settle(v View, joined bool, err error, start time.Time) (View, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		if !n.down {
			n.rec.ClusterOutage()
			n.log.Warn("redis unreachable: limits and session caps fall back to an equal part per instance last known",
				"err", err, "peers", n.last.Peers, "for", n.memory)
		}
		n.down = true
		return n.rememberedLocked(start), false
	}
	if n.down {
		n.log.Info("redis reachable again: limits shared by demand", "peers", v.Peers)
	}
	// Write every session slot anew after an outage (what changed meanwhile was
	// not written) and at the first exchange (the hash may hold a previous
	// run's slots, under the same name).
	joined = joined || n.down || n.lastOK.IsZero()
	n.down, n.forgot = false, false
	n.last, n.lastOK = v, start
	n.last.Usage = nil
	n.rec.ClusterPeers(v.Peers)
	return v, joined
}

// rememberedLocked is the view during an outage: the last one, not connected,
// until peerMemory has passed since it; then this instance alone. n.mu is held.
func (n *Node) rememberedLocked(now time.Time) View {
	if now.Sub(n.lastOK) < n.memory {
		v := n.last
		v.Connected, v.Usage = false, nil
		return v
	}
	if !n.forgot && n.last.Peers > 1 {
		n.log.Warn("redis still unreachable: the other instances are forgotten, limits and session caps are whole here",
			"peers", n.last.Peers, "after", n.memory)
	}
	n.forgot = true
	return View{Peers: 1}
}

// peers returns the instances this one counts on sharing limits and caps with,
// itself included: the live ones of the last exchange that worked, 1 once
// peerMemory has passed since it.
func (n *Node) peers(now time.Time) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if now.Sub(n.lastOK) >= n.memory {
		return 1
	}
	return max(n.last.Peers, 1)
}

// isDown reports whether the last exchange failed.
func (n *Node) isDown() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.down
}
