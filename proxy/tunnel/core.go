// Package tunnel is the protocol-free core of sockshaper: what happens to a
// client's request once a front (SOCKS5, HTTP) has read it. Policy, resolution,
// classification, the per-user session cap, buckets, the dial, the relay and the
// accounting live here, for every front alike. The core takes what a step needs
// as parameters and returns outcomes ([Outcome]) that the front turns into its
// protocol's replies; it never writes to the client.
//
// A [Conn] is one client connection from accept to close; a [Session] is one
// request on it (a SOCKS5 connection carries one, an HTTP keep-alive connection
// one per request), with its own accounting line.
package tunnel

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/shaping"
	"github.com/sockshaper/sockshaper/usage"
)

// Resolver looks up a destination name. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Roster is a verifier that lists its users, as a users file does: a reload cuts
// the sessions of users it no longer lists. A directory does not list its users;
// a user removed there loses access when the verified-login cache forgets them.
type Roster interface {
	Has(user string) bool
}

// Policy is everything a reload replaces. A connection keeps the Policy in force
// when it was accepted from its handshake to its end, so it sees one consistent
// config. A Policy is not modified once in use.
type Policy struct {
	Config     *configs.Config
	Classifier *shaping.Classifier
	// Authn checks logins; nil: no authentication.
	Authn *auth.Authenticator
	// Roster lists the users, when the verifier can; nil otherwise.
	Roster Roster
}

// Options are the parts a Core uses that outlive one config.
type Options struct {
	// Logger receives errors and events. Nil discards.
	Logger *slog.Logger
	// Accounting receives one line per session at its close. Nil uses Logger.
	Accounting *slog.Logger
	// Recorder receives metrics. Nil records nothing.
	Recorder Recorder
	// Resolver resolves destination names. Nil uses net.DefaultResolver.
	Resolver Resolver
	// Shaper hands out token buckets. Nil relays every session unshaped.
	Shaper *shaping.Registry
	// Usage counts users' sessions for quotas and the usage view, and refuses
	// sessions of users over a refusing quota. Nil admits everyone.
	Usage *usage.Store
	// UserSlots shares max_sessions_per_user with the other instances of a
	// cluster. Nil: the cap counts this instance's sessions only.
	UserSlots UserSlots
}

// Core is the state the sessions of one server share: the policy in force, the
// per-user session counts, the proxy's own addresses, and the parts from
// [Options]. Create it with [New]; it is safe for concurrent use and starts no
// goroutine.
type Core struct {
	log      *slog.Logger
	acct     *slog.Logger
	rec      Recorder
	resolver Resolver
	shaper   *shaping.Registry
	usage    *usage.Store
	slots    UserSlots

	policy      atomic.Pointer[Policy]
	own         ownAddrs
	users       userSessions
	httpsPort   atomic.Uint32 // the TLS listener's port; 0 without one
	proxyPort   atomic.Uint32 // the plain listener's port
	nextConn    atomic.Uint64
	nextSession atomic.Uint64
	// pipeWarned is when pipeFailed last logged, in Unix nanoseconds.
	pipeWarned atomic.Int64
	// pipes is where relays take splice pipes; nil: the shared pool. Tests set
	// it (SetPipeSource) to make pipes fail, as they do when the process is out
	// of descriptors.
	pipes func() (*pipe, error)
	// workers run handshakes and sessions' ends on goroutines with grown
	// stacks (workers.go).
	workers *workers
}

// New returns a Core applying p.
func New(p *Policy, opts Options) *Core {
	c := &Core{log: opts.Logger, acct: opts.Accounting, rec: opts.Recorder, resolver: opts.Resolver,
		shaper: opts.Shaper, usage: opts.Usage, slots: opts.UserSlots, workers: newWorkers()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.acct == nil {
		c.acct = c.log
	}
	if c.rec == nil {
		c.rec = NopRecorder{}
	}
	if c.resolver == nil {
		c.resolver = net.DefaultResolver
	}
	c.users.init()
	c.SetPolicy(p)
	return c
}

// SetPolicy applies p to connections accepted from now on.
func (c *Core) SetPolicy(p *Policy) { c.policy.Store(p) }

// Policy returns the policy in force.
func (c *Core) Policy() *Policy { return c.policy.Load() }

// Recorder returns where the core's metrics go, for the fronts' own events.
func (c *Core) Recorder() Recorder { return c.rec }

// Logger returns the core's logger.
func (c *Core) Logger() *slog.Logger { return c.log }

// Shaper returns the bucket registry; nil when sessions are not shaped.
func (c *Core) Shaper() *shaping.Registry { return c.shaper }

// AddOwnAddr makes ap an address that no session may reach, whatever the config
// allows: the proxy's listeners. An unspecified address stands for every local
// address at ap's port.
func (c *Core) AddOwnAddr(ap netip.AddrPort) { c.own.add(ap) }

// SetHTTPSPort records the port the HTTPS listener listens on, which fronts name
// to clients (the PAC file, require_tls's refusal).
func (c *Core) SetHTTPSPort(port uint16) { c.httpsPort.Store(uint32(port)) }

// SetProxyPort records the port the plain listener (listen) listens on, which
// the PAC file names to clients that fetched it over TLS.
func (c *Core) SetProxyPort(port uint16) { c.proxyPort.Store(uint32(port)) }

// ProxyPort returns the plain listener's port; 0 before it listens.
func (c *Core) ProxyPort() uint16 { return uint16(c.proxyPort.Load()) }

// HTTPSPort returns the HTTPS listener's port; 0 without one.
func (c *Core) HTTPSPort() uint16 { return uint16(c.httpsPort.Load()) }

// UserSessions returns this instance's admitted sessions per user, for the
// other instances of a cluster.
func (c *Core) UserSessions() map[string]int { return c.users.snapshot() }

// SetPeerSessions tells the core the other instances' sessions per user (their
// sum), so that max_sessions_per_user holds across the cluster. Counts are as
// fresh as the last cluster exchange (a quarter of a second).
func (c *Core) SetPeerSessions(peers map[string]int) { c.users.setPeers(peers) }

// pipeLogEvery spaces the warnings about splice pipes that could not be made.
const pipeLogEvery = time.Minute

// pipeFailed hears that a relay could not make a splice pipe (out of
// descriptors) and copied through a buffer instead; it warns at most once per
// pipeLogEvery.
func (c *Core) pipeFailed(err error) {
	now := time.Now().UnixNano()
	last := c.pipeWarned.Load()
	if now-last < int64(pipeLogEvery) || !c.pipeWarned.CompareAndSwap(last, now) {
		return
	}
	c.log.Warn("splice pipe unavailable; relaying through buffers", "err", err)
}

// Recover keeps one connection's bug from taking the daemon down: deferred on a
// goroutine that serves conn, it logs a panic and closes the connection.
func (c *Core) Recover(conn *Conn) {
	if r := recover(); r != nil {
		c.log.Error("session panic", "conn", conn.ID, "panic", r, "stack", string(debug.Stack()))
		conn.Abort()
	}
}
