package tunnel

import "context"

// UserSlots holds max_sessions_per_user beyond this instance: the instances of
// a cluster share each user's cap. The core counts a user's sessions here
// first (cheap, and enough for an instance alone); a session it admits then
// reserves its slot with UserSlots, and gives it back at its end.
// *cluster.Slots implements it.
type UserSlots interface {
	// Reserve takes one of user's max slots for a session this instance
	// admits, or reports false when the user holds max across the instances.
	// It may take a network round trip, which it bounds itself; ctx ends with
	// the session's connection.
	Reserve(ctx context.Context, user string, max int) bool
	// Release gives back a slot Reserve took. It does not block.
	Release(user string)
}

// reserveSlot reserves user's slot across the instances, when there are any.
func (c *Core) reserveSlot(ctx context.Context, user string, max int) bool {
	return c.slots == nil || c.slots.Reserve(ctx, user, max)
}

// releaseUser gives back a session slot of user here and across the instances.
func (c *Core) releaseUser(user string) {
	c.users.release(user)
	if c.slots != nil {
		c.slots.Release(user)
	}
}
