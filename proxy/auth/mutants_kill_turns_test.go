package auth

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sockshaper/sockshaper/configs"
)

// These tests kill mutants gremlins left alive in throttle.go's turns
// (turns.go) and the users file (usersfile.go); see docs/testing.md.

// turnsThrottle is a throttle giving turns every second in bursts of burst,
// on a clock that stands still.
func turnsThrottle(burst int) (*throttle, netip.Prefix) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	set := configs.AuthThrottle{FailuresPerUser: 3, FailuresPerAddress: 5, Window: time.Minute,
		OverAllowanceInterval: time.Second, OverAllowanceBurst: burst}
	return newThrottle(set, func() time.Time { return at }), netip.MustParsePrefix("10.1.2.3/32")
}

// TestTurnsComeInWholeBursts: an address's first turns come at once, burst of
// them and no more while the clock stands still; a burst of 1 (the smallest the
// config allows) still gives turns.
func TestTurnsComeInWholeBursts(t *testing.T) {
	for _, burst := range []int{1, 3} {
		th, a := turnsThrottle(burst)
		granted := 0
		for i := range burst + 2 {
			w := &turnWaiter{poke: make(chan struct{}, 1), pw: uint64(i + 1)}
			if _, ok, queued := th.tryTurn(a, w); !queued {
				t.Fatalf("burst %d: turns not given at all", burst)
			} else if ok {
				granted++
			}
		}
		if granted != burst {
			t.Errorf("burst %d: %d turns at once, want %d", burst, granted, burst)
		}
	}
}

// TestSprayedPasswordsRememberedAreBounded: an address remembers at most
// maxSprayed wrong passwords checked on its turns, the oldest forgotten first.
func TestSprayedPasswordsRememberedAreBounded(t *testing.T) {
	th, a := turnsThrottle(3)
	for pw := range uint64(maxSprayed + 44) {
		th.spendTurn(a, pw+1)
	}
	b := th.turns[a]
	if len(b.failed) != maxSprayed || len(b.order) != maxSprayed {
		t.Fatalf("remembered %d passwords (order %d), want %d", len(b.failed), len(b.order), maxSprayed)
	}
	if _, kept := b.failed[1]; kept {
		t.Errorf("the oldest password is still remembered past the bound")
	}
	if _, kept := b.failed[maxSprayed+44]; !kept {
		t.Errorf("the newest password is not remembered")
	}
}

// TestUsersFileLimits: a name of 255 bytes (RFC 1929's limit) and a hash of
// cost 17 (maxCost) load; one byte or one cost more is refused.
func TestUsersFileLimits(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	withCost := func(c string) string { return string(hash[:4]) + c + string(hash[6:]) }
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{strings.Repeat("a", 255) + ":" + string(hash), true},
		{strings.Repeat("a", 256) + ":" + string(hash), false},
		{"alice:" + withCost("17"), true},
		{"alice:" + withCost("18"), false},
	} {
		if _, _, _, err := parseUserLine(tc.line); (err == nil) != tc.ok {
			t.Errorf("%.20s… (%d bytes): error %v, want accepted %v", tc.line, len(tc.line), err, tc.ok)
		}
	}
}

// TestObservedCheckTimeFollowsChecks: the average of checks at the file's
// highest cost moves towards what checks take, so the failure floor follows
// a machine that became slower than at load.
func TestObservedCheckTimeFollowsChecks(t *testing.T) {
	var u UsersFile
	for range 64 {
		u.observe(100 * time.Millisecond)
	}
	if f := u.FailureFloor(); f < 95*time.Millisecond || f > 100*time.Millisecond {
		t.Errorf("failure floor after 64 checks of 100ms: %v, want within 95ms..100ms", f)
	}
}

// TestHashPasswordLimits: `sockshaper passwd` takes names up to RFC 1929's 255
// bytes and passwords up to bcrypt's 72, and refuses one byte more.
func TestHashPasswordLimits(t *testing.T) {
	for _, tc := range []struct {
		user, password string
		ok             bool
	}{
		{strings.Repeat("u", 255), "pw", true},
		{strings.Repeat("u", 256), "pw", false},
		{"alice", strings.Repeat("p", 72), true},
		{"alice", strings.Repeat("p", 73), false},
	} {
		if _, err := HashPassword(tc.user, tc.password); (err == nil) != tc.ok {
			t.Errorf("name of %d bytes, password of %d: error %v, want accepted %v", len(tc.user), len(tc.password), err, tc.ok)
		}
	}
}
