package shaping

import (
	"maps"
	"testing"
	"testing/synctest"

	"golang.org/x/time/rate"
)

// TestWhoGroup checks the group a login chooses, which travels with each
// session to Acquire: it replaces the default group, applies to the user's
// live buckets at once, loses to shaping.members, counts as none when it is
// not defined, and follows reloads.
func TestWhoGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		students, staff := rate.Limit(2*mib), rate.Limit(12*mib)
		r := NewRegistry(campus()) // students default, alice in members as staff
		own := func(who Who) rate.Limit {
			l := r.Acquire(who, "web")
			defer l.Release()
			return limitOf(l, download, 0)
		}
		if got := own(Who{User: "bob", Group: "staff"}); got != staff {
			t.Errorf("bob after a staff login: %v, want %v", got, staff)
		}
		live := r.Acquire(Who{User: "carol"}, "web")
		if got := limitOf(live, download, 0); got != students {
			t.Errorf("carol with no group: %v, want the default %v", got, students)
		}
		again := r.Acquire(Who{User: "carol", Group: "staff"}, "web")
		if got := limitOf(live, download, 0); got != staff {
			t.Errorf("carol's live session after a staff login: %v, want %v", got, staff)
		}
		again.Release()
		live.Release()
		if got := own(Who{User: "alice", Group: "students"}); got != staff {
			t.Errorf("alice (members: staff) after a students login: %v, want members' %v", got, staff)
		}
		if got := own(Who{User: "erin", Group: "nosuchgroup"}); got != students {
			t.Errorf("erin with an undefined group: %v, want the default %v", got, students)
		}
		cfg := campus()
		cfg.Groups = maps.Clone(cfg.Groups)
		faster := cfg.Groups["staff"]
		faster.Download = 20 * mib
		cfg.Groups["staff"] = faster
		r.Update(cfg)
		if got := own(Who{User: "bob", Group: "staff"}); got != 20*mib {
			t.Errorf("bob after staff rose to 20 MiB/s: %v", got)
		}
		delete(cfg.Groups, "staff")
		cfg.Members = nil
		r.Update(cfg)
		if got := own(Who{User: "bob", Group: "staff"}); got != students {
			t.Errorf("bob after staff was removed: %v, want the default %v", got, students)
		}
	})
}
