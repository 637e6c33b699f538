package tunnel

import (
	"net/netip"
	"testing"

	"github.com/sockshaper/sockshaper/configs"
)

// TestDeniedRuleNamesTheRule: a refused destination is named by the rule
// that refused it (a named set, a CIDR as written, the IPv4 rule an IPv6 form
// embeds), in agreement with deniedAddr, and an allowed one by none.
func TestDeniedRuleNamesTheRule(t *testing.T) {
	cfg, err := configs.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Access.DenyDestinations = append(cfg.Access.DenyDestinations, "192.0.2.0/24", "203.0.113.7")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := cfg.Access
	for _, tc := range []struct{ addr, want string }{
		{"127.0.0.1", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"169.254.1.1", "link-local"},
		{"169.254.169.254", "metadata"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"192.0.2.9", "192.0.2.0/24"},
		{"203.0.113.7", "203.0.113.7/32"},
		{"::ffff:203.0.113.7", "203.0.113.7/32"},
		{"64:ff9b::7f00:1", "embedded-ipv4:loopback"},
		{"64:ff9b::a9fe:a9fe", "embedded-ipv4:metadata"},
		{"2002:c000:209::1", "embedded-ipv4:192.0.2.0/24"},
		{"fd00::1", "private"},
		{"8.8.8.8", ""},
		{"2001:db8::1", ""},
		{"64:ff9b::808:808", ""},
	} {
		addr := netip.MustParseAddr(tc.addr)
		got := deniedRule(a.DeniedPrefixes, a.DeniedRules, addr)
		if got != tc.want {
			t.Errorf("deniedRule(%s) = %q, want %q", tc.addr, got, tc.want)
		}
		if denied := deniedAddr(a.DeniedPrefixes, addr); denied != (got != "") {
			t.Errorf("%s: deniedAddr %v but rule %q", tc.addr, denied, got)
		}
	}
	// A policy built without rule names (a test's) names the prefix.
	if got := deniedRule(a.DeniedPrefixes, nil, netip.MustParseAddr("127.0.0.1")); got != "127.0.0.0/8" {
		t.Errorf("without names: %q, want 127.0.0.0/8", got)
	}
}

// TestDeniedRuleAllocatesNothingWhenAllowed: the rule lookup costs no
// allocation on the allowed path (ResolveAllowed runs it on every address).
func TestDeniedRuleAllocatesNothingWhenAllowed(t *testing.T) {
	cfg, err := configs.Default()
	if err != nil {
		t.Fatal(err)
	}
	a, public := cfg.Access, netip.MustParseAddr("2002:808:808::1")
	if n := testing.AllocsPerRun(100, func() { deniedRule(a.DeniedPrefixes, a.DeniedRules, public) }); n != 0 {
		t.Errorf("deniedRule allocates %v times per allowed address", n)
	}
}
