package shaping

import (
	"maps"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// TestSetUserGroup checks the group a login chooses: it replaces the default
// group, applies to live buckets at once, loses to shaping.members, follows
// reloads, and is forgotten with the user's buckets.
func TestSetUserGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		students, staff := rate.Limit(2*mib), rate.Limit(12*mib)
		r := NewRegistry(campus()) // students default, alice in members as staff
		own := func(user string) rate.Limit {
			l := r.Acquire(user, "web")
			defer l.Release()
			return limitOf(l, download, 0)
		}
		r.SetUserGroup("bob", "staff")
		if got := own("bob"); got != staff {
			t.Errorf("bob after a staff login: %v, want %v", got, staff)
		}
		live := r.Acquire("carol", "web")
		r.SetUserGroup("carol", "staff")
		if got := limitOf(live, download, 0); got != staff {
			t.Errorf("carol's live bucket after a staff login: %v, want %v", got, staff)
		}
		live.Release()
		r.SetUserGroup("carol", "")
		if got := own("carol"); got != students {
			t.Errorf("carol after a login with no group: %v, want the default %v", got, students)
		}
		r.SetUserGroup("alice", "students")
		if got := own("alice"); got != staff {
			t.Errorf("alice (members: staff) after a students login: %v, want members' %v", got, staff)
		}
		r.SetUserGroup("erin", "nosuchgroup")
		if got := own("erin"); got != students {
			t.Errorf("erin with an undefined group: %v, want the default %v", got, students)
		}

		cfg := campus()
		cfg.Groups = maps.Clone(cfg.Groups)
		faster := cfg.Groups["staff"]
		faster.Download = 20 * mib
		cfg.Groups["staff"] = faster
		r.Update(cfg)
		if got := own("bob"); got != 20*mib {
			t.Errorf("bob after staff rose to 20 MiB/s: %v", got)
		}
		delete(cfg.Groups, "staff")
		cfg.Members = nil
		r.Update(cfg)
		if got := own("bob"); got != students {
			t.Errorf("bob after staff was removed: %v, want the default %v", got, students)
		}
		r.Update(campus())

		// A login's group outlives a session-less wait shorter than
		// IdleEviction, and goes with the buckets after it.
		r.SetUserGroup("dave", "staff")
		time.Sleep(9 * time.Minute)
		r.EvictIdle(time.Now())
		if got := own("dave"); got != staff {
			t.Errorf("dave 9 minutes after a staff login: %v, want %v", got, staff)
		}
		time.Sleep(11 * time.Minute)
		r.EvictIdle(time.Now())
		if got := own("dave"); got != students {
			t.Errorf("dave after eviction: %v, want the default %v", got, students)
		}
		var nilRegistry *Registry
		nilRegistry.SetUserGroup("x", "staff") // no panic
	})
}
