package configs

import (
	"slices"
	"testing"
	"time"
)

func TestParseDays(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []time.Weekday
		err  bool
	}{
		{in: "mon-fri", want: []time.Weekday{1, 2, 3, 4, 5}},
		{in: "SAT, Sun", want: []time.Weekday{0, 6}},
		{in: "fri-mon", want: []time.Weekday{0, 1, 5, 6}},
		{in: "mon,wed-thu", want: []time.Weekday{1, 3, 4}},
		{in: "daily", want: []time.Weekday{0, 1, 2, 3, 4, 5, 6}},
		{in: "sun-sat", want: []time.Weekday{0, 1, 2, 3, 4, 5, 6}},
		{in: "tue-tue", want: []time.Weekday{2}},
		{in: "", err: true},
		{in: "monday", err: true},
		{in: "mon-", err: true},
		{in: "mon,,fri", err: true},
	} {
		got, err := ParseDays(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParseDays(%q) error %v, want error %v", tc.in, err, tc.err)
			continue
		}
		var days []time.Weekday
		for d := time.Sunday; d <= time.Saturday; d++ {
			if got.Has(d) {
				days = append(days, d)
			}
		}
		if !tc.err && !slices.Equal(days, tc.want) {
			t.Errorf("ParseDays(%q) = %v, want %v", tc.in, days, tc.want)
		}
	}
}

func TestParseHours(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Span
	}{
		{"08:00-18:00", []Span{{480, 1080}}},
		{"22:00-06:00", []Span{{1320, 360}}},
		{"00:00-24:00", []Span{{0, 1440}}},
		{"08:00-12:00, 13:00-17:30", []Span{{480, 720}, {780, 1050}}},
		{"23:59-00:00", []Span{{1439, 0}}},
	} {
		got, err := ParseHours(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseHours(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "8:00-9:00", "08:00", "24:00-01:00", "08:60-09:00", "10:00-10:00",
		"00:00-24:00x", "-1:00-02:00", "08:00-18:00,", "00:00-00:00", "24:00-24:00"} {
		if got, err := ParseHours(bad); err == nil {
			t.Errorf("ParseHours(%q) = %v, want an error", bad, got)
		}
	}
}

func window(t *testing.T, days, hours, zone string) *Window {
	t.Helper()
	w := &Window{Days: days, Hours: hours}
	var err error
	if w.Weekdays, err = ParseDays(days); err != nil {
		t.Fatal(err)
	}
	if w.Spans, err = ParseHours(hours); err != nil {
		t.Fatal(err)
	}
	if w.Location, err = LoadTimeZone(zone); err != nil {
		t.Fatal(err)
	}
	return w
}

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindowContains(t *testing.T) {
	lectures := window(t, "mon-fri", "08:00-18:00", "Europe/Berlin")
	night := window(t, "fri", "22:00-06:00", "UTC")
	for _, tc := range []struct {
		w    *Window
		at   string // UTC
		want bool
	}{
		// Berlin is UTC+1 in winter: 08:00 local is 07:00 UTC.
		{lectures, "2026-03-27 06:59:59", false}, // Friday
		{lectures, "2026-03-27 07:00:00", true},
		{lectures, "2026-03-27 16:59:59", true},
		{lectures, "2026-03-27 17:00:00", false},
		{lectures, "2026-03-28 10:00:00", false}, // Saturday
		// Clocks went forward on Sunday 29 March: 08:00 local is now 06:00 UTC.
		{lectures, "2026-03-30 05:59:59", false},
		{lectures, "2026-03-30 06:00:00", true},
		{lectures, "2026-03-30 15:59:59", true},
		{lectures, "2026-03-30 16:00:00", false},
		// Back on Sunday 25 October: 08:00 local is 07:00 UTC again.
		{lectures, "2026-10-26 06:30:00", false},
		{lectures, "2026-10-26 07:00:00", true},
		// Past midnight: the span belongs to Friday, the day it starts on.
		{night, "2026-03-26 23:00:00", false}, // Thursday night
		{night, "2026-03-27 21:59:00", false},
		{night, "2026-03-27 22:00:00", true},
		{night, "2026-03-28 05:59:00", true}, // Saturday morning
		{night, "2026-03-28 06:00:00", false},
		{night, "2026-03-28 22:00:00", false}, // Saturday night is not in days
	} {
		if got := tc.w.Contains(utc(tc.at)); got != tc.want {
			t.Errorf("%s %s contains %s UTC = %v, want %v", tc.w.Days, tc.w.Hours, tc.at, got, tc.want)
		}
	}
}

// TestWindowDSTGaps checks the wall-clock rule at both DST changes: a span in the
// hour that is skipped never opens, and one in the hour that repeats opens twice.
func TestWindowDSTGaps(t *testing.T) {
	skipped := window(t, "daily", "02:15-02:45", "Europe/Berlin")
	repeated := window(t, "daily", "02:00-02:30", "Europe/Berlin")
	count := func(w *Window, day string) (minutes int) {
		for m := range 24 * 60 {
			if w.Contains(utc(day + " 00:00:00").Add(time.Duration(m) * time.Minute)) {
				minutes++
			}
		}
		return minutes
	}
	if got := count(skipped, "2026-03-29"); got != 0 {
		t.Errorf("02:15-02:45 on the day 02:00-03:00 is skipped: open %d minutes, want 0", got)
	}
	if got := count(skipped, "2026-03-28"); got != 30 {
		t.Errorf("02:15-02:45 on an ordinary day: open %d minutes, want 30", got)
	}
	if got := count(repeated, "2026-10-25"); got != 60 {
		t.Errorf("02:00-02:30 on the day 02:00-03:00 repeats: open %d minutes, want 60", got)
	}
}

func TestQuotaFor(t *testing.T) {
	s := Shaping{
		DefaultGroup: "students",
		Groups: map[string]Limit{
			"students": {Quota: &Quota{Daily: 100, OverRate: 10}},
			"staff":    {},
		},
		Members:    map[string]string{"alice": "staff", "carol": "staff"},
		UserQuotas: map[string]Quota{"bob": {}, "carol": {Monthly: 5}},
	}
	for _, tc := range []struct {
		user, group string
		q           Quota
		ok          bool
	}{
		{"dave", "students", Quota{Daily: 100, OverRate: 10}, true},
		{"alice", "staff", Quota{}, false},
		{"bob", "students", Quota{}, false}, // exempted
		{"carol", "staff", Quota{Monthly: 5}, true},
	} {
		g, q, ok := s.QuotaFor(tc.user)
		if g != tc.group || q != tc.q || ok != tc.ok {
			t.Errorf("QuotaFor(%q) = %q, %+v, %v; want %q, %+v, %v", tc.user, g, q, ok, tc.group, tc.q, tc.ok)
		}
	}
	if !s.HasQuotas() {
		t.Error("HasQuotas() = false")
	}
	if (&Shaping{UserQuotas: map[string]Quota{"bob": {}}}).HasQuotas() {
		t.Error("HasQuotas() = true with only an exemption")
	}
}

func TestParseDSCP(t *testing.T) {
	for in, want := range map[string]DSCP{"46": 46, "ef": 46, "AF41": 34, "af11": 10, "AF43": 38, "CS1": 8,
		"cs7": 56, "0": 0, "63": 63, "0x2e": 46, "LE": 1, "VA": 44, " EF ": 46} {
		got, err := ParseDSCP(in)
		if err != nil || got != want {
			t.Errorf("ParseDSCP(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"64", "-1", "AF44", "AF51", "CS8", "", "E F", "256"} {
		if got, err := ParseDSCP(bad); err == nil {
			t.Errorf("ParseDSCP(%q) = %d, want an error", bad, got)
		}
	}
	if DSCP(46).String() != "EF" || DSCP(34).String() != "AF41" || DSCP(5).String() != "5" || DSCP(46).TOS() != 0xb8 {
		t.Errorf("String/TOS: %s %s %s %#x", DSCP(46), DSCP(34), DSCP(5), DSCP(46).TOS())
	}
}

func FuzzParseDays(f *testing.F) {
	for _, s := range []string{"mon-fri", "sat,sun", "fri-mon", "daily", "", "mon,", "x-y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		days, err := ParseDays(s)
		if err == nil && (days == 0 || days > 0x7f) {
			t.Fatalf("ParseDays(%q) = %#b without an error", s, days)
		}
	})
}

func FuzzParseHours(f *testing.F) {
	for _, s := range []string{"08:00-18:00", "22:00-06:00", "00:00-24:00", "08:00-12:00,13:00-17:00", "24:00-01:00", "9:00-10:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spans, err := ParseHours(s)
		if err != nil {
			return
		}
		for _, sp := range spans {
			if sp.Start < 0 || sp.Start >= minutesPerDay || sp.End < 0 || sp.End > minutesPerDay || sp.Start == sp.End {
				t.Fatalf("ParseHours(%q) = %v: span out of range", s, spans)
			}
		}
		if back, err := ParseHours(FormatHours(spans)); err != nil || !slices.Equal(back, spans) {
			t.Fatalf("ParseHours(%q) = %v; FormatHours %q reads back as %v, %v", s, spans, FormatHours(spans), back, err)
		}
	})
}

func FuzzParseDSCP(f *testing.F) {
	for _, s := range []string{"46", "EF", "af41", "CS7", "64", "0x3f", "LE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDSCP(s)
		if err != nil {
			return
		}
		if d > MaxDSCP {
			t.Fatalf("ParseDSCP(%q) = %d, above 63", s, d)
		}
		if back, err := ParseDSCP(d.String()); err != nil || back != d {
			t.Fatalf("ParseDSCP(%q) = %d; String %q reads back as %d, %v", s, d, d.String(), back, err)
		}
	})
}
