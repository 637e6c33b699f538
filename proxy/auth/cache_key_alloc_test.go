// sync.Pool drops items at random under the race detector, so the allocations
// are counted without it.

//go:build !race

package auth

import (
	"testing"
	"time"
)

// The login key costs no allocation: every session's login computes one
// (issue 24: it was 9 allocations and a key schedule a login).
func TestKeyOfAllocatesNothing(t *testing.T) {
	c := newCache(time.Minute, 0, time.Now)
	if a := testing.AllocsPerRun(100, func() { c.keyOf("alice", "pw") }); a > 0 {
		t.Errorf("keyOf allocates %v times a login, want 0", a)
	}
}
