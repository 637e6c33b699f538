package configs

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DSCP is a Differentiated Services code point (RFC 2474), 0 to 63: the upper six
// bits of the IPv4 TOS byte and of the IPv6 traffic class. 0 is the default
// class (best effort, CS0). In YAML it is a number or a name: CS0-CS7, AF11-AF43
// (RFC 2597), EF (46, RFC 3246, what Microsoft recommends for Teams audio), VA
// (44, RFC 5865) or LE (1, lower effort, RFC 8622).
type DSCP uint8

// MaxDSCP is the largest code point: six bits.
const MaxDSCP = 63

// dscpNames lists the named code points.
func dscpNames() map[string]DSCP {
	names := map[string]DSCP{"EF": 46, "VA": 44, "LE": 1}
	for i := range 8 {
		names["CS"+strconv.Itoa(i)] = DSCP(8 * i)
	}
	for class := 1; class <= 4; class++ {
		for drop := 1; drop <= 3; drop++ {
			names[fmt.Sprintf("AF%d%d", class, drop)] = DSCP(8*class + 2*drop)
		}
	}
	return names
}

// ParseDSCP reads a code point written as a number from 0 to 63 (decimal, or
// hexadecimal with 0x) or as a name (case-insensitive), such as EF or AF41.
func ParseDSCP(s string) (DSCP, error) {
	t := strings.TrimSpace(s)
	if d, ok := dscpNames()[strings.ToUpper(t)]; ok {
		return d, nil
	}
	n, err := strconv.ParseUint(t, 0, 8)
	if err != nil || n > MaxDSCP {
		return 0, fmt.Errorf("dscp %q is not a number from 0 to 63 nor a name such as EF, AF41 or CS1", s)
	}
	return DSCP(n), nil
}

// String returns the code point's name when it has one (EF, AF41, CS1), else its
// number; [ParseDSCP] reads it back.
func (d DSCP) String() string {
	for name, v := range dscpNames() {
		if v == d {
			return name
		}
	}
	return strconv.Itoa(int(d))
}

// TOS returns the IPv4 TOS byte (and IPv6 traffic class) that carries d, its
// ECN bits clear.
func (d DSCP) TOS() int { return int(d) << 2 }

// UnmarshalYAML reads a code point written as in [ParseDSCP].
func (d *DSCP) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: dscp is a single value such as 46 or EF", n.Line)
	}
	v, err := ParseDSCP(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}
