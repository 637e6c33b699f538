package shaping

// GroupFor returns the shaping group who's buckets follow: theirs in
// shaping.members, else the group their login chose (when it is defined),
// else shaping.default_group; "" on a nil Registry. The accounting line names
// it.
func (r *Registry) GroupFor(who Who) string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if g, ok := r.cfg.Members[who.User]; ok {
		return g
	}
	if _, defined := r.cfg.Groups[who.Group]; defined && who.Group != "" {
		return who.Group
	}
	return r.cfg.DefaultGroup
}
