package proxy

import (
	"net/netip"
	"sync"

	"github.com/sockshaper/sockshaper/configs"
)

// sessionLimits counts live sessions in total, per client address and per user.
type sessionLimits struct {
	mu       sync.Mutex
	total    int
	byClient map[netip.Addr]int
	byUser   map[string]int
}

func (l *sessionLimits) init() {
	l.byClient = map[netip.Addr]int{}
	l.byUser = map[string]int{}
}

// admitClient reserves a session slot for client, or reports false when the global
// or per-client cap is reached.
func (l *sessionLimits) admitClient(client netip.Addr, lim configs.Limits) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= lim.MaxSessions || l.byClient[client] >= lim.MaxSessionsPerClientIP {
		return false
	}
	l.total++
	l.byClient[client]++
	return true
}

func (l *sessionLimits) releaseClient(client netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byClient[client]--; l.byClient[client] <= 0 {
		delete(l.byClient, client)
	}
}

// admitUser reserves one of user's session slots.
func (l *sessionLimits) admitUser(user string, max int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byUser[user] >= max {
		return false
	}
	l.byUser[user]++
	return true
}

func (l *sessionLimits) releaseUser(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byUser[user]--; l.byUser[user] <= 0 {
		delete(l.byUser, user)
	}
}
