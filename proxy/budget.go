package proxy

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/sockshaper/sockshaper/configs"
)

// Descriptor accounting behind the derived budgets. A connection in its handshake
// holds one descriptor (its socket); one back in the handshake budget between two
// HTTP requests (stageIdle) may keep its origin connection for the next request
// too, so a handshake slot is counted as two. An established session holds two sockets
// (client and destination; a UDP association holds its control connection and its
// relay socket) and, while bytes move, a splice pipe of two more: four is what a
// session may need at once, and what the derivation sets aside for each, so that a
// full handshake budget can never push a session's dial or pipe past the limit.
const (
	fdPerHandshake = 2
	fdPerSession   = 4

	// The process's own descriptors (listeners, the admin server and its clients,
	// log files, resolver sockets, the users file at reload): a sixteenth of the
	// limit, at least 32 (a tiny limit still serves a few sessions) and at most
	// 256 (more than the process ever holds besides sessions).
	minReserve     = 32
	maxReserve     = 256
	reserveDivisor = 16

	// The handshake budget is an eighth of what the reserve leaves. Real clients
	// finish a handshake in milliseconds, so even thousands of logins a second keep
	// few in flight; the budget only has to outlast a flood long enough that a real
	// handshake is never the oldest one left. Its ceiling bounds the memory that
	// unauthenticated connections can hold (about 10 KiB each).
	handshakeDivisor = 8
	minHandshakes    = 16
	maxHandshakes    = 16384

	// One client address may hold an eighth of the handshake budget: a NAT address
	// of a whole lab stays well inside it, and an attacker needs eight addresses
	// before its flood can touch other addresses' handshakes.
	perClientDivisor       = 8
	minHandshakesPerClient = 8

	// assumedFDLimit stands in when the descriptor limit cannot be read.
	assumedFDLimit = 1 << 16
)

// Budgets are the connection caps in force: the config's limits, with the zero ones
// derived from the descriptor limit.
type Budgets struct {
	// FDLimit is the descriptor limit (soft RLIMIT_NOFILE) the budgets were derived
	// from; 0 when it could not be read.
	FDLimit int
	// Reserve is the part of FDLimit kept for the process's own descriptors.
	Reserve                int
	MaxHandshakes          int
	MaxHandshakesPerClient int
	MaxSessions            int
	MaxSessionsPerClient   int
	MaxSessionsPerUser     int
	// Derived names the config keys that were 0 and were derived.
	Derived []string
}

// DeriveBudgets returns the budgets for lim under a descriptor limit of fdLimit (0 or
// less: unknown). Explicit values are kept as they are; [Budgets.Fits] reports
// whether they fit.
func DeriveBudgets(lim configs.Limits, fdLimit int) Budgets {
	b := Budgets{
		FDLimit:                max(fdLimit, 0),
		MaxHandshakes:          lim.MaxHandshakes,
		MaxHandshakesPerClient: lim.MaxHandshakesPerClientIP,
		MaxSessions:            lim.MaxSessions,
		MaxSessionsPerClient:   lim.MaxSessionsPerClientIP,
		MaxSessionsPerUser:     lim.MaxSessionsPerUser,
	}
	n := b.FDLimit
	if n == 0 {
		n = assumedFDLimit
	}
	b.Reserve = min(max(n/reserveDivisor, minReserve), maxReserve)
	avail := max(n-b.Reserve, 0)
	if b.MaxHandshakes == 0 {
		// The floor yields to the limit: at a tiny one, at least one session
		// must fit beside a full handshake budget.
		fit := max((avail-fdPerSession)/fdPerHandshake, 1)
		b.MaxHandshakes = min(max(avail/handshakeDivisor, minHandshakes), maxHandshakes, fit)
		b.Derived = append(b.Derived, "max_handshakes")
	}
	if b.MaxHandshakesPerClient == 0 {
		b.MaxHandshakesPerClient = min(max(b.MaxHandshakes/perClientDivisor, minHandshakesPerClient), b.MaxHandshakes)
		b.Derived = append(b.Derived, "max_handshakes_per_client_ip")
	}
	if b.MaxSessions == 0 {
		b.MaxSessions = max((avail-b.MaxHandshakes*fdPerHandshake)/fdPerSession, 1)
		b.Derived = append(b.Derived, "max_sessions")
	}
	return b
}

// Fits reports, as an error naming the numbers, when a full handshake budget and
// full session budget together could need more descriptors than the limit: then a
// flood could make established sessions fail to dial or to splice. Nil when they
// fit or the limit is unknown.
func (b Budgets) Fits() error {
	if b.FDLimit == 0 {
		return nil
	}
	need := b.MaxHandshakes*fdPerHandshake + b.MaxSessions*fdPerSession + b.Reserve
	if need <= b.FDLimit {
		return nil
	}
	return fmt.Errorf("limits: max_handshakes %d × %d + max_sessions %d × %d descriptors + %d reserved = %d, "+
		"above the descriptor limit %d: established sessions may fail with \"too many open files\"; "+
		"lower the limits or raise the limit (LimitNOFILE=, ulimit -n)",
		b.MaxHandshakes, fdPerHandshake, b.MaxSessions, fdPerSession, b.Reserve, need, b.FDLimit)
}

// budgetCap is one budget under its config key.
type budgetCap struct {
	name string
	n    int
}

// caps lists the budgets under their config keys, for the log and the metrics.
func (b Budgets) caps() []budgetCap {
	return []budgetCap{
		{"max_handshakes", b.MaxHandshakes},
		{"max_handshakes_per_client_ip", b.MaxHandshakesPerClient},
		{"max_sessions", b.MaxSessions},
		{"max_sessions_per_client_ip", b.MaxSessionsPerClient},
		{"max_sessions_per_user", b.MaxSessionsPerUser},
	}
}

// LogAttrs returns the descriptor limit and the budgets as log attributes, the
// budgets under their config keys.
func (b Budgets) LogAttrs() []any {
	attrs := []any{slog.Int("fd_limit", b.FDLimit), slog.Int("fd_reserve", b.Reserve)}
	for _, c := range b.caps() {
		attrs = append(attrs, slog.Int(c.name, c.n))
	}
	return append(attrs, slog.String("derived", strings.Join(b.Derived, ",")))
}

// String lists the budgets as key=value under their config keys.
func (b Budgets) String() string {
	var parts []string
	for _, c := range b.caps() {
		parts = append(parts, fmt.Sprintf("%s=%d", c.name, c.n))
	}
	if len(b.Derived) > 0 {
		parts = append(parts, "(derived: "+strings.Join(b.Derived, ", ")+")")
	}
	return strings.Join(parts, " ")
}

// clientKey is what per-client caps count by: an IPv4 address (IPv4-mapped IPv6
// included) or an IPv6 /64, because one IPv6 host or home owns a whole /64 and
// could otherwise spread its connections over 2^64 addresses.
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return netip.PrefixFrom(a, a.BitLen()) // invalid address: its own key
	}
	return p
}
