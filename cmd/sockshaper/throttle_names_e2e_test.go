package main

import (
	"fmt"
	"testing"

	"github.com/sockshaper/sockshaper/internal/slapdtest"
)

// aliceSpellings are names under which the test directory (OpenLDAP, whose uid
// compares with caseIgnoreMatch: case, surrounding spaces and compatibility forms
// ignored) finds alice's one entry.
var aliceSpellings = []string{
	"alice", "Alice", "ALICE", "aLiCe", " alice", "alice  ", "  ALICE ",
	"ＡＬＩＣＥ", "ａlice", "alİce", "alice\u00a0",
}

// throttleLimits keeps the handshake budget out of the throttle's way: every
// guess of these tests comes from one address at once.
const throttleLimits = `
limits: {max_handshakes: 2000, max_handshakes_per_client_ip: 1000}
`

// TestLDAPNameSpellingsShareOneFailureCount is issue 20's finding 4 against the
// built binary and a real slapd: 100 wrong passwords in waves of 25 at once, from one address,
// for alice under the spellings the directory folds into her entry. Her
// allowance (failures_per_user 10) bounds the password checks (binds) however the
// name is spelt, with the default folding of names and with exact names (where
// the entry's DN alone holds the count). Her right password is then refused from
// that address (she is locked there) and accepted from another.
func TestLDAPNameSpellingsShareOneFailureCount(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	for _, tc := range []struct{ name, ldapExtra string }{
		{"fold", ""},
		{"exact", "    user_name_case: exact\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ldapDaemonConfig(t, s, "  cache_ttl: 0s\n", tc.ldapExtra, groupShaping+throttleLimits)
			d := startDaemon(t, cfg, "")
			const guesses, allowance = 100, 10 // the default failures_per_user
			for wave := range guesses / 25 {   // 25 at a time: the queue holds 32 checks of one address
				res := loginsAtOnce(t, d.listen, "127.0.0.1", 25,
					func(i int) string { return aliceSpellings[(wave*25+i)%len(aliceSpellings)] },
					func(i int) string { return fmt.Sprintf("guess-%d-%d", wave, i) })
				if ok := countStatus(res, 0); ok != 0 {
					t.Fatalf("%d wrong passwords accepted", ok)
				}
			}
			binds := d.metric(`sockshaper_ldap_request_duration_seconds_count{operation="bind"}`)
			failed := d.metric(`sockshaper_auth_attempts_total{result="failed"}`)
			throttled := d.metric(`sockshaper_auth_attempts_total{result="throttled"}`)
			t.Logf("%d guesses at alice under %d spellings: %v password checks (binds), %v failed, %v throttled",
				guesses, len(aliceSpellings), binds, failed, throttled)
			if binds > allowance {
				t.Errorf("%v password checks against alice from one address; want at most her allowance %d", binds, allowance)
			}
			for i, name := range aliceSpellings[:3] {
				if r, err := socksLoginFrom(d.listen, "127.0.0.1", name, slapdtest.Password("alice")); err != nil || r.status != 1 {
					t.Errorf("alice's right password as %q from the guessing address: status %d, %v; want 1 (locked there)", name, r.status, err)
				}
				if r, err := socksLoginFrom(d.listen, fmt.Sprintf("127.0.0.%d", 3+i), name, slapdtest.Password("alice")); err != nil || r.status != 0 {
					t.Errorf("alice's right password as %q from another address: status %d, %v; want 0", name, r.status, err)
				}
			}
		})
	}
}
