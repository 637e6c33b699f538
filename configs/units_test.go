package configs

import (
	"math"
	"testing"
)

func TestParseRate(t *testing.T) {
	good := []struct {
		in   string
		want Rate
	}{
		{"8Mbit", 1000000},
		{"1MiB", 1048576},
		{"512kbit", 64000},
		{"0", 0},
		{"0Mbit", 0},
		{"0.0", 0},
		{"1000", 1000},
		{"100B", 100},
		{"1.5Mbit", 187500},
		{"1MiB/s", 1048576},
		{"8Mbit/s", 1000000},
		{"8mbit", 1000000},
		{"8MBIT", 1000000},
		{"8 Mbit", 1000000},
		{"  8Mbit  ", 1000000},
		{"2MB", 2000000},
		{"1kB", 1000},
		{".5kB", 500},
		{"1KiB", 1024},
		{"1GiB", 1 << 30},
		{"1GB", 1000000000},
		{"1Gbit", 125000000},
		{"4bit", 1},  // 0.5 byte/s rounds up
		{"12bit", 2}, // 1.5 byte/s rounds up
		{"9223372036854775807", math.MaxInt64},
	}
	for _, tc := range good {
		got, err := ParseRate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRateErrors(t *testing.T) {
	bad := []struct{ in, want string }{
		{"", "empty rate; write 0 for unlimited"},
		{"8Mb", `rate "8Mb": ambiguous unit "Mb": write Mbit for bits or MB for bytes per second`},
		{"8Mbps", `rate "8Mbps": ambiguous unit "Mbps": write Mbit for bits or MB for bytes per second`},
		{"8KB", `rate "8KB": ambiguous unit "KB": write kbit for bits or kB for bytes per second`},
		{"8b", `rate "8b": ambiguous unit "b": write bit for bits or B for bytes per second`},
		{"-1Mbit", `rate "-1Mbit" is negative`},
		{"abc", `rate "abc": must start with a number`},
		{"NaN", `rate "NaN": must start with a number`},
		{".", `rate ".": must start with a number`},
		{"1.2.3Mbit", `rate "1.2.3Mbit": number has more than one decimal point`},
		{"8Tbit", `rate "8Tbit": unknown unit "Tbit"; use one of bit, kbit, Mbit, Gbit, B, kB, MB, GB, KiB, MiB, GiB`},
		{"1e6", `rate "1e6": unknown unit "e6"; use one of bit, kbit, Mbit, Gbit, B, kB, MB, GB, KiB, MiB, GiB`},
		{"8MiB/h", `rate "8MiB/h": unknown unit "MiB/h"; use one of bit, kbit, Mbit, Gbit, B, kB, MB, GB, KiB, MiB, GiB`},
		{"8mib", `rate "8mib": unknown unit "mib"; use one of bit, kbit, Mbit, Gbit, B, kB, MB, GB, KiB, MiB, GiB`},
		{"9223372036854775808", `rate "9223372036854775808": too large`},
		{"100000000000GiB", `rate "100000000000GiB": too large`},
		{"1234567890123456789012345678901234567890123", `rate "1234567890123456789012345678901234567890123": number has too many digits`},
		{"1bit", `rate "1bit" rounds to 0 bytes, and 0 means unlimited`},
	}
	for _, tc := range bad {
		if got, err := ParseRate(tc.in); err == nil || err.Error() != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want error %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	good := []struct {
		in   string
		want ByteSize
	}{
		{"256KiB", 262144},
		{"1MiB", 1048576},
		{"64kB", 64000},
		{"0", 0},
		{"1500", 1500},
		{"1500B", 1500},
		{"1.5MiB", 1572864},
		{"2GB", 2000000000},
		{"1GiB", 1 << 30},
	}
	for _, tc := range good {
		got, err := ParseByteSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, want string }{
		{"", "empty size; write 0 for the default"},
		{"8Mbit", `size "8Mbit": unknown unit "Mbit"; use one of B, kB, MB, GB, KiB, MiB, GiB`},
		{"1MiB/s", `size "1MiB/s": unknown unit "MiB/s"; use one of B, kB, MB, GB, KiB, MiB, GiB`},
		{"8Mb", `size "8Mb": ambiguous unit "Mb": write MB or MiB`},
		{"8KB", `size "8KB": ambiguous unit "KB": write kB or KiB`},
		{"8b", `size "8b": ambiguous unit "b": write B for bytes`},
		{"-1", `size "-1" is negative`},
		{"0.4B", `size "0.4B" rounds to 0 bytes, and 0 means the default`},
	}
	for _, tc := range bad {
		if got, err := ParseByteSize(tc.in); err == nil || err.Error() != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want error %q", tc.in, got, err, tc.want)
		}
	}
}

func TestRateString(t *testing.T) {
	for _, tc := range []struct {
		in   Rate
		want string
	}{
		{0, "0"},
		{1, "1B"},
		{125, "1kbit"},
		{64000, "512kbit"},
		{187500, "1500kbit"},
		{1000000, "8Mbit"},
		{125000000, "1Gbit"},
		{1048576, "1MiB"},
		{1000001, "1000001B"},
		{math.MaxInt64, "9223372036854775807B"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("Rate(%d).String() = %q; want %q", int64(tc.in), got, tc.want)
		}
		if back, err := ParseRate(tc.want); err != nil || back != tc.in {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tc.want, back, err, tc.in)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for _, tc := range []struct {
		in   ByteSize
		want string
	}{
		{0, "0"},
		{1500, "1500B"},
		{64000, "64kB"},
		{262144, "256KiB"},
		{1 << 30, "1GiB"},
		{1000000000, "1GB"},
		{3 << 20, "3MiB"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("ByteSize(%d).String() = %q; want %q", int64(tc.in), got, tc.want)
		}
		if back, err := ParseByteSize(tc.want); err != nil || back != tc.in {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.want, back, err, tc.in)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	good := []struct {
		in        string
		want      PortRange
		canonical string
	}{
		{"443", PortRange{"", 443, 443}, "443"},
		{"tcp/443", PortRange{"tcp", 443, 443}, "tcp/443"},
		{"udp/3478-3481", PortRange{"udp", 3478, 3481}, "udp/3478-3481"},
		{"UDP/5060", PortRange{"udp", 5060, 5060}, "udp/5060"},
		{" 1000 - 2000 ", PortRange{"", 1000, 2000}, "1000-2000"},
		{"1-65535", PortRange{"", 1, 65535}, "1-65535"},
		{"80-80", PortRange{"", 80, 80}, "80"},
	}
	for _, tc := range good {
		got, err := ParsePortRange(tc.in)
		if err != nil || got != tc.want || got.String() != tc.canonical {
			t.Errorf("ParsePortRange(%q) = %+v (%q), %v; want %+v (%q)", tc.in, got, got, err, tc.want, tc.canonical)
		}
	}
	bad := []struct{ in, want string }{
		{"", `port range "": missing port number`},
		{"0", `port range "0": port 0 is not in 1-65535`},
		{"65536", `port range "65536": port 65536 is not in 1-65535`},
		{"udp/", `port range "udp/": missing port number`},
		{"sctp/1", `port range "sctp/1": unknown transport "sctp"; write tcp/ or udp/, or leave it out for both`},
		{"5061-5060", `port range "5061-5060": first port is above the last`},
		{"https", `port range "https": "https" is not a port number`},
		{"-1", `port range "-1": missing port number`},
		{"1-", `port range "1-": missing port number`},
		{"tcp/1-2-3", `port range "tcp/1-2-3": "2-3" is not a port number`},
		{"+443", `port range "+443": "+443" is not a port number`},
	}
	for _, tc := range bad {
		if got, err := ParsePortRange(tc.in); err == nil || err.Error() != tc.want {
			t.Errorf("ParsePortRange(%q) = %+v, %v; want error %q", tc.in, got, err, tc.want)
		}
	}
}

func TestPortRangeContains(t *testing.T) {
	udp := PortRange{"udp", 3478, 3481}
	both := PortRange{"", 443, 443}
	for _, tc := range []struct {
		pr        PortRange
		transport string
		port      uint16
		want      bool
	}{
		{udp, "udp", 3478, true},
		{udp, "udp", 3481, true},
		{udp, "udp", 3482, false},
		{udp, "udp", 3477, false},
		{udp, "tcp", 3478, false},
		{both, "tcp", 443, true},
		{both, "udp", 443, true},
		{both, "tcp", 80, false},
	} {
		if got := tc.pr.Contains(tc.transport, tc.port); got != tc.want {
			t.Errorf("%v.Contains(%q, %d) = %v; want %v", tc.pr, tc.transport, tc.port, got, tc.want)
		}
	}
}
