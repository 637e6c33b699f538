package tunnel

import (
	"maps"
	"sync"
)

// userSessions counts each user's admitted sessions, for max_sessions_per_user:
// here, and on the other instances of a cluster as they last reported.
type userSessions struct {
	mu     sync.Mutex
	byUser map[string]int
	peers  map[string]int // the other instances' sessions by user; nil alone
}

func (u *userSessions) init() { u.byUser = map[string]int{} }

// admit reserves one of user's session slots, or reports false when the user
// holds max here and on the other instances together.
func (u *userSessions) admit(user string, max int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byUser[user]+u.peers[user] >= max {
		return false
	}
	u.byUser[user]++
	return true
}

// snapshot returns the sessions per user here.
func (u *userSessions) snapshot() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return maps.Clone(u.byUser)
}

// setPeers replaces the other instances' sessions per user.
func (u *userSessions) setPeers(peers map[string]int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.peers = peers
}

func (u *userSessions) release(user string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byUser[user]--; u.byUser[user] <= 0 {
		delete(u.byUser, user)
	}
}
