package proxy

import (
	"net/netip"
	"sync"

	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// sessionLimits counts established connections in total and per client key (see
// [clientKey]). A connection takes its session slot once its handshake is over;
// until then the handshake budget counts it. (Sessions per user are the core's.)
type sessionLimits struct {
	mu       sync.Mutex
	total    int
	byClient map[netip.Prefix]int
}

func (l *sessionLimits) init() {
	l.byClient = map[netip.Prefix]int{}
}

// admitClient reserves a session slot for client, or says why not: the client's
// cap (LimitReached) or the proxy's (ProxyFull: the server is full).
func (l *sessionLimits) admitClient(client netip.Prefix, b Budgets) tunnel.Refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byClient[client] >= b.MaxSessionsPerClient {
		return tunnel.LimitReached
	}
	if l.total >= b.MaxSessions {
		return tunnel.ProxyFull
	}
	l.total++
	l.byClient[client]++
	return tunnel.Allowed
}

func (l *sessionLimits) releaseClient(client netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byClient[client]--; l.byClient[client] <= 0 {
		delete(l.byClient, client)
	}
}
