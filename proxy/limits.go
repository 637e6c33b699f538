package proxy

import (
	"net/netip"
	"sync"
)

// sessionLimits counts established sessions in total, per client key (see
// [clientKey]) and per user. A connection takes its session slot once its
// handshake is over; until then the handshake budget counts it.
type sessionLimits struct {
	mu       sync.Mutex
	total    int
	byClient map[netip.Prefix]int
	byUser   map[string]int
}

func (l *sessionLimits) init() {
	l.byClient = map[netip.Prefix]int{}
	l.byUser = map[string]int{}
}

// admitClient reserves a session slot for client, or returns the reply code to
// refuse with when the client's cap (not allowed: a policy on that client) or the
// proxy's (a general failure: the server is full) is reached.
func (l *sessionLimits) admitClient(client netip.Prefix, b Budgets) (ok bool, code byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byClient[client] >= b.MaxSessionsPerClient {
		return false, replyNotAllowed
	}
	if l.total >= b.MaxSessions {
		return false, replyGeneralFailure
	}
	l.total++
	l.byClient[client]++
	return true, 0
}

func (l *sessionLimits) releaseClient(client netip.Prefix) {
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
