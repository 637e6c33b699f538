package tunnel

import "sync"

// userSessions counts each user's admitted sessions, for max_sessions_per_user.
type userSessions struct {
	mu     sync.Mutex
	byUser map[string]int
}

func (u *userSessions) init() { u.byUser = map[string]int{} }

// admit reserves one of user's session slots, or reports false at max.
func (u *userSessions) admit(user string, max int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byUser[user] >= max {
		return false
	}
	u.byUser[user]++
	return true
}

func (u *userSessions) release(user string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byUser[user]--; u.byUser[user] <= 0 {
		delete(u.byUser, user)
	}
}
