package shaping

import (
	"cmp"
	"slices"

	"github.com/sockshaper/sockshaper/configs"
)

// UserView is what the shaper says of one user, for their own page: their
// group, the limit of their own buckets now, and their live sessions by app
// class.
type UserView struct {
	// Group is the user's shaping group (see [Registry.GroupFor]).
	Group string
	// Limit is the limit of the user's own buckets now: their group's under
	// the open windows, held to the over-quota rate while they are over a
	// quota that shapes. Zero rates are unlimited.
	Limit configs.Limit
	// Apps are the user's live sessions by app class, most first.
	Apps []AppSessions
}

// AppSessions is the number of a user's live sessions of one app class.
type AppSessions struct {
	App      string
	Sessions int
}

// UserView returns what the registry knows of who now. It reads only who's
// own buckets; it is safe for concurrent use.
func (r *Registry) UserView(who Who) UserView {
	if r == nil {
		return UserView{}
	}
	v := UserView{Group: r.GroupFor(who)}
	r.mu.Lock()
	defer r.mu.Unlock()
	v.Limit = r.ownLimitLocked(who.User)
	for k, e := range r.buckets {
		if k.level == levelUserApp && k.user == who.User && e.leases > 0 {
			v.Apps = append(v.Apps, AppSessions{App: k.app, Sessions: e.leases})
		}
	}
	slices.SortFunc(v.Apps, func(a, b AppSessions) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), cmp.Compare(a.App, b.App))
	})
	return v
}
