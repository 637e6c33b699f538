package configs

import "testing"

// TestShapingLimits: a config without a shaping section (or one that sets no
// rate) limits nothing; the embedded default and any rate, quota or window
// rate does.
func TestShapingLimits(t *testing.T) {
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	mbit := Rate(1_000_000)
	for _, tc := range []struct {
		name string
		s    Shaping
		want bool
	}{
		{"no shaping section", Shaping{}, false},
		{"groups without rates", Shaping{DefaultGroup: "students", Groups: map[string]Limit{"students": {}}}, false},
		{"exempting user quota", Shaping{UserQuotas: map[string]Quota{"alice": {}}}, false},
		{"embedded default", def.Shaping, true},
		{"group rate", Shaping{Groups: map[string]Limit{"g": {Download: mbit}}}, true},
		{"group quota", Shaping{Groups: map[string]Limit{"g": {Quota: &Quota{Daily: 1 << 30}}}}, true},
		{"window rate", Shaping{Groups: map[string]Limit{"g": {During: map[string]WindowLimit{"w": {Upload: &mbit}}}}}, true},
		{"app total", Shaping{Apps: map[string]AppLimits{"skype": {Total: Limit{Upload: mbit}}}}, true},
		{"user quota", Shaping{UserQuotas: map[string]Quota{"alice": {Monthly: 1 << 30}}}, true},
		{"global", Shaping{Global: Limit{Download: mbit}}, true},
	} {
		if got := tc.s.Limits(); got != tc.want {
			t.Errorf("%s: Limits() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
