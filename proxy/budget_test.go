package proxy

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sockshaper/sockshaper/configs"

	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

func TestDeriveBudgets(t *testing.T) {
	defaults := configs.Defaults().Limits
	explicit := configs.Limits{MaxSessions: 20000, MaxSessionsPerClientIP: 512, MaxSessionsPerUser: 256,
		MaxHandshakes: 3000, MaxHandshakesPerClientIP: 100}
	tests := []struct {
		name    string
		lim     configs.Limits
		fdLimit int
		want    Budgets // Derived is checked through fits and the names below
		fits    bool
	}{
		// 20,000 is this machine's limit and the one of the flood.
		{"typical 20000", defaults, 20000,
			Budgets{FDLimit: 20000, Reserve: 256, MaxHandshakes: 2468, MaxHandshakesPerClient: 308, MaxSessions: 3702, MaxSessionsPerClient: 512, MaxSessionsPerUser: 256}, true},
		// systemd's default hard limit; the handshake ceiling bounds memory.
		{"systemd 524288", defaults, 524288,
			Budgets{FDLimit: 524288, Reserve: 256, MaxHandshakes: 16384, MaxHandshakesPerClient: 2048, MaxSessions: 122816, MaxSessionsPerClient: 512, MaxSessionsPerUser: 256}, true},
		{"old default 1024", defaults, 1024,
			Budgets{FDLimit: 1024, Reserve: 64, MaxHandshakes: 120, MaxHandshakesPerClient: 15, MaxSessions: 180, MaxSessionsPerClient: 512, MaxSessionsPerUser: 256}, true},
		// A tiny limit still serves something and never goes negative.
		{"tiny 40", defaults, 40,
			Budgets{FDLimit: 40, Reserve: 32, MaxHandshakes: 2, MaxHandshakesPerClient: 2, MaxSessions: 1, MaxSessionsPerClient: 512, MaxSessionsPerUser: 256}, true},
		{"unknown limit", defaults, 0,
			Budgets{FDLimit: 0, Reserve: 256, MaxHandshakes: 8160, MaxHandshakesPerClient: 1020, MaxSessions: 12240, MaxSessionsPerClient: 512, MaxSessionsPerUser: 256}, true},
		// Explicit values are honoured even when they cannot fit; Fits says so.
		{"explicit too big", explicit, 20000,
			Budgets{FDLimit: 20000, Reserve: 256, MaxHandshakes: 3000, MaxHandshakesPerClient: 100, MaxSessions: 20000, MaxSessionsPerClient: 512, MaxSessionsPerUser: 256}, false},
		{"explicit fits", explicit, 100000,
			Budgets{FDLimit: 100000, Reserve: 256, MaxHandshakes: 3000, MaxHandshakesPerClient: 100, MaxSessions: 20000, MaxSessionsPerClient: 512, MaxSessionsPerUser: 256}, true},
		// A per-client derived cap never exceeds an explicit small global one.
		{"small explicit global", configs.Limits{MaxHandshakes: 5, MaxSessionsPerClientIP: 1, MaxSessionsPerUser: 1}, 20000,
			Budgets{FDLimit: 20000, Reserve: 256, MaxHandshakes: 5, MaxHandshakesPerClient: 5, MaxSessions: 4933, MaxSessionsPerClient: 1, MaxSessionsPerUser: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DeriveBudgets(tt.lim, tt.fdLimit)
			derived := got.Derived
			got.Derived = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DeriveBudgets =\n %+v\nwant\n %+v", got, tt.want)
			}
			for _, c := range []struct {
				key string
				set int
			}{
				{"max_handshakes", tt.lim.MaxHandshakes},
				{"max_handshakes_per_client_ip", tt.lim.MaxHandshakesPerClientIP},
				{"max_sessions", tt.lim.MaxSessions},
			} {
				if slices.Contains(derived, c.key) != (c.set == 0) {
					t.Errorf("Derived = %v; %s is %d in the config", derived, c.key, c.set)
				}
			}
			err := got.Fits()
			if (err == nil) != tt.fits {
				t.Errorf("Fits() = %v, want fits %v", err, tt.fits)
			}
			if err != nil && !strings.Contains(err.Error(), "descriptor limit") {
				t.Errorf("Fits() = %q: does not name the descriptor limit", err)
			}
		})
	}
}

func TestDerivedBudgetsFitEveryLimit(t *testing.T) {
	for n := 64; n <= 1<<22; n = n*5/4 + 1 {
		b := DeriveBudgets(configs.Defaults().Limits, n)
		if err := b.Fits(); err != nil {
			t.Fatalf("limit %d: %v", n, err)
		}
		if b.MaxHandshakesPerClient > b.MaxHandshakes || b.MaxHandshakes < 1 || b.MaxSessions < 1 {
			t.Fatalf("limit %d: %+v", n, b)
		}
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"}, // IPv4-mapped counts as IPv4
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"}, // same /64: one client
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"}, // next /64: another
		{"fe80::1%eth0", "fe80::/64"},            // zone dropped
		{"::1", "::/64"},
	}
	for _, tt := range tests {
		if got := clientKey(netip.MustParseAddr(tt.addr)); got.String() != tt.want {
			t.Errorf("clientKey(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}

func TestSessionLimitsCountIPv6By64(t *testing.T) {
	var l sessionLimits
	l.init()
	b := Budgets{MaxSessions: 10, MaxSessionsPerClient: 2}
	admit := func(a string) tunnel.Refusal { return l.admitClient(clientKey(netip.MustParseAddr(a)), b) }
	for _, a := range []string{"2001:db8::1", "2001:db8::ffff:1"} {
		if r := admit(a); r != tunnel.Allowed {
			t.Fatalf("%s refused", a)
		}
	}
	if r := admit("2001:db8::2:3:4"); r != tunnel.LimitReached {
		t.Errorf("third session of 2001:db8::/64: %v; want refused at the client's cap", r)
	}
	if r := admit("2001:db8:0:1::1"); r != tunnel.Allowed {
		t.Error("another /64 refused")
	}
	l.releaseClient(clientKey(netip.MustParseAddr("2001:db8::1")))
	if r := admit("2001:db8::9"); r != tunnel.Allowed {
		t.Error("slot of 2001:db8::/64 not given back")
	}
}
