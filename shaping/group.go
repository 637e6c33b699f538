package shaping

// GroupOf returns user's shaping group as their buckets follow it now:
// theirs in shaping.members, else the group their login chose (see
// [Registry.SetUserGroup]), else shaping.default_group; "" on a nil Registry.
// The accounting line names it.
func (r *Registry) GroupOf(user string) string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.groupOfLocked(user)
}
