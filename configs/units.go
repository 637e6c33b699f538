package configs

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// unit is one spelling of a rate or size unit: a quantity of 1 unit is num/den bytes.
type unit struct {
	name string
	num  int64
	den  int64
}

// bitUnits are decimal, as link speeds are: a "Mbit" is 10^6 bits, 125,000 bytes.
func bitUnits() []unit {
	return []unit{{"bit", 1, 8}, {"kbit", 1e3, 8}, {"Mbit", 1e6, 8}, {"Gbit", 1e9, 8}}
}

// byteUnits lists the decimal and binary byte units; "KiB" and "kB" differ by 2.4%,
// which is why both spellings are exact and case-sensitive.
func byteUnits() []unit {
	return []unit{
		{"B", 1, 1}, {"kB", 1e3, 1}, {"MB", 1e6, 1}, {"GB", 1e9, 1},
		{"KiB", 1 << 10, 1}, {"MiB", 1 << 20, 1}, {"GiB", 1 << 30, 1},
	}
}

// maxNumberLen bounds the digits of a quantity so that a hostile config cannot make the
// exact big-number arithmetic expensive; 40 digits are far beyond int64 anyway.
const maxNumberLen = 40

// quantity describes one kind of value written as a number and a unit.
type quantity struct {
	what      string // "rate" or "size", for messages
	units     []unit
	perSecond bool   // accept a "/s" suffix
	zero      string // what 0 means, to explain why a value rounding to 0 is refused
}

func rateQuantity() quantity {
	return quantity{what: "rate", units: append(bitUnits(), byteUnits()...), perSecond: true, zero: "unlimited"}
}

func sizeQuantity() quantity {
	return quantity{what: "size", units: byteUnits(), zero: "the default"}
}

// ParseRate parses a rate such as "8Mbit", "512kbit", "1.5Mbit", "1MiB/s", "2MB" or a
// bare number of bytes per second, and returns it in bytes per second, rounded to the
// nearest byte. "0" is unlimited. Bit units are decimal and may be written in any case
// ("8mbit"); byte units are case-sensitive, and spellings that could mean either bits
// or bytes ("8Mb", "8Mbps", "8KB") are errors that say which spelling to use.
// Negative values, values too large for an int64 and non-zero values that round to
// 0 bytes per second (0 would mean unlimited) are errors.
func ParseRate(s string) (Rate, error) {
	v, err := rateQuantity().parse(s)
	return Rate(v), err
}

// ParseByteSize parses a size such as "256KiB", "1MiB", "64kB", "1.5MB" or a bare
// number of bytes. Units are B, kB, MB, GB (decimal) and KiB, MiB, GiB (binary),
// case-sensitive. Negative values, values too large for an int64 and non-zero values
// that round to 0 bytes are errors.
func ParseByteSize(s string) (ByteSize, error) {
	v, err := sizeQuantity().parse(s)
	return ByteSize(v), err
}

func (q quantity) parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty %s; write 0 for %s", q.what, q.zero)
	}
	if t[0] == '-' {
		return 0, fmt.Errorf("%s %q is negative", q.what, s)
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	number, unitName := t[:i], strings.TrimSpace(t[i:])
	if err := checkNumber(number); err != nil {
		return 0, fmt.Errorf("%s %q: %w", q.what, s, err)
	}
	if q.perSecond {
		unitName = strings.TrimSuffix(unitName, "/s")
	}
	u, err := q.lookup(unitName)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", q.what, s, err)
	}
	v, err := scale(number, u)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", q.what, s, err)
	}
	if v == 0 && strings.Trim(number, "0.") != "" {
		return 0, fmt.Errorf("%s %q rounds to 0 bytes, and 0 means %s", q.what, s, q.zero)
	}
	return v, nil
}

// checkNumber accepts decimal numbers with an optional fraction: "8", "1.5", ".5".
func checkNumber(s string) error {
	switch {
	case strings.Trim(s, ".") == "":
		return errors.New("must start with a number")
	case len(s) > maxNumberLen:
		return errors.New("number has too many digits")
	case strings.Count(s, ".") > 1:
		return errors.New("number has more than one decimal point")
	}
	return nil
}

// lookup finds a unit by its exact spelling (none is bytes), then bit units in any
// case, and explains the spellings people use for both bits and bytes instead of
// guessing.
func (q quantity) lookup(name string) (unit, error) {
	if name == "" {
		return unit{"", 1, 1}, nil
	}
	for _, u := range q.units {
		if name == u.name {
			return u, nil
		}
	}
	lower := strings.ToLower(name)
	for _, u := range q.units {
		if u.den == 8 && lower == strings.ToLower(u.name) {
			return u, nil
		}
	}
	base := strings.TrimSuffix(lower, "ps")
	if prefix, ok := map[string]string{"b": "", "kb": "k", "mb": "M", "gb": "G"}[base]; ok {
		if q.perSecond {
			return unit{}, fmt.Errorf("ambiguous unit %q: write %sbit for bits or %sB for bytes per second",
				name, prefix, prefix)
		}
		if prefix == "" {
			return unit{}, fmt.Errorf("ambiguous unit %q: write B for bytes", name)
		}
		return unit{}, fmt.Errorf("ambiguous unit %q: write %sB or %siB", name, prefix, strings.ToUpper(prefix))
	}
	names := make([]string, len(q.units))
	for i, u := range q.units {
		names[i] = u.name
	}
	return unit{}, fmt.Errorf("unknown unit %q; use one of %s", name, strings.Join(names, ", "))
}

// scale converts number units to bytes exactly and rounds half away from zero.
func scale(number string, u unit) (int64, error) {
	r, ok := new(big.Rat).SetString(number)
	if !ok {
		return 0, fmt.Errorf("%q is not a number", number)
	}
	n := new(big.Int).Mul(r.Num(), big.NewInt(u.num))
	d := new(big.Int).Mul(r.Denom(), big.NewInt(u.den))
	q, m := new(big.Int).QuoRem(n, d, new(big.Int))
	if m.Lsh(m, 1).Cmp(d) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, errors.New("too large")
	}
	return q.Int64(), nil
}

// String returns the rate in the largest unit that writes it as a whole number,
// preferring bits, as link speeds are quoted; [ParseRate] reads it back unchanged.
func (r Rate) String() string {
	if r <= 0 {
		return strconv.FormatInt(int64(r), 10)
	}
	if r <= math.MaxInt64/8 {
		if s, ok := wholeIn(int64(r)*8, bitUnits()[1:], 8); ok {
			return s
		}
	}
	return ByteSize(r).String()
}

// String returns the size in the largest unit that writes it as a whole number,
// preferring binary units; [ParseByteSize] reads it back unchanged.
func (b ByteSize) String() string {
	if b <= 0 {
		return strconv.FormatInt(int64(b), 10)
	}
	units := byteUnits()
	if s, ok := wholeIn(int64(b), units[4:], 1); ok {
		return s
	}
	if s, ok := wholeIn(int64(b), units[1:4], 1); ok {
		return s
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// wholeIn writes v (in units of 1/per byte) in the largest of units that divides it.
func wholeIn(v int64, units []unit, per int64) (string, bool) {
	for i := len(units) - 1; i >= 0; i-- {
		size := units[i].num * per / units[i].den
		if v%size == 0 {
			return strconv.FormatInt(v/size, 10) + units[i].name, true
		}
	}
	return "", false
}

// UnmarshalYAML reads a rate written as in [ParseRate].
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a rate is a single value such as 8Mbit", n.Line)
	}
	v, err := ParseRate(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*r = v
	return nil
}

// UnmarshalYAML reads a size written as in [ParseByteSize].
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a size is a single value such as 256KiB", n.Line)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}
