package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"8Mbit", "1MiB/s", "512kbit", "0", "1.5Mbit", "8Mb", "-1", "1bit", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r < 0 {
			t.Fatalf("ParseRate(%q) = %d, negative", s, r)
		}
		if back, err := ParseRate(r.String()); err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %d; its String %q reads back as %d, %v", s, r, r.String(), back, err)
		}
	})
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"256KiB", "64kB", "1500", "0", "1.5MiB", "8Kb", "-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if b < 0 {
			t.Fatalf("ParseByteSize(%q) = %d, negative", s, b)
		}
		if back, err := ParseByteSize(b.String()); err != nil || back != b {
			t.Fatalf("ParseByteSize(%q) = %d; its String %q reads back as %d, %v", s, b, b.String(), back, err)
		}
	})
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"443", "tcp/443", "udp/3478-3481", "0", "65536", "5-1", "UDP/1-65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePortRange(s)
		if err != nil {
			return
		}
		if err := p.check(); err != nil {
			t.Fatalf("ParsePortRange(%q) = %+v, which is invalid: %v", s, p, err)
		}
		if back, err := ParsePortRange(p.String()); err != nil || back != p {
			t.Fatalf("ParsePortRange(%q) = %+v; its String %q reads back as %+v, %v", s, p, p.String(), back, err)
		}
	})
}

// FuzzParse checks that Parse never panics, that every error it returns is a set of
// FieldErrors naming the source, and that a config it accepts validates again.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, "default.yaml", "sockshaper.example.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz")
		if err != nil {
			checkFieldErrors(t, err)
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz") {
					t.Fatalf("error line %q does not name the source", line)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate again: %v", err)
		}
	})
}
