package configs

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParsePortRange parses "443", "tcp/443", "udp/3478-3481" or "1000-2000". The
// transport is case-insensitive and stored in lower case; ports are 1 to 65535 and the
// first may not be above the last.
func ParsePortRange(s string) (PortRange, error) {
	var pr PortRange
	rest := strings.TrimSpace(s)
	if transport, ports, ok := strings.Cut(rest, "/"); ok {
		pr.Transport = strings.ToLower(strings.TrimSpace(transport))
		if pr.Transport != "tcp" && pr.Transport != "udp" {
			return PortRange{}, fmt.Errorf("port range %q: unknown transport %q; write tcp/ or udp/, or leave it out for both", s, transport)
		}
		rest = ports
	}
	first, last, isRange := strings.Cut(rest, "-")
	var err error
	if pr.First, err = parsePort(first); err != nil {
		return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
	}
	pr.Last = pr.First
	if isRange {
		if pr.Last, err = parsePort(last); err != nil {
			return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
		}
	}
	if pr.First > pr.Last {
		return PortRange{}, fmt.Errorf("port range %q: first port is above the last", s)
	}
	return pr, nil
}

func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("missing port number")
	}
	if strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %s is not in 1-65535", s)
	}
	return uint16(n), nil
}

// String returns the canonical form that [ParsePortRange] reads back: "443",
// "tcp/443", "udp/3478-3481".
func (p PortRange) String() string {
	s := strconv.Itoa(int(p.First))
	if p.Last != p.First {
		s += "-" + strconv.Itoa(int(p.Last))
	}
	if p.Transport != "" {
		s = p.Transport + "/" + s
	}
	return s
}

// Contains reports whether port on transport ("tcp" or "udp") is in the range.
func (p PortRange) Contains(transport string, port uint16) bool {
	return (p.Transport == "" || p.Transport == transport) && p.First <= port && port <= p.Last
}

// check reports what is wrong with a PortRange built in Go rather than parsed.
func (p PortRange) check() error {
	switch {
	case p.Transport != "" && p.Transport != "tcp" && p.Transport != "udp":
		return fmt.Errorf("unknown transport %q; use tcp, udp or empty for both", p.Transport)
	case p.First == 0:
		return errors.New("port 0 is not in 1-65535")
	case p.First > p.Last:
		return errors.New("first port is above the last")
	}
	return nil
}

// UnmarshalYAML reads a port range written as in [ParsePortRange]; a bare YAML
// number is a single port.
func (p *PortRange) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a port range is a single value such as udp/3478-3481", n.Line)
	}
	v, err := ParsePortRange(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*p = v
	return nil
}

// UnmarshalYAML reads a mapping of class name to [AppClass] and keeps the mapping's
// order, since the first matching class wins. The mapping replaces any classes already
// present, and unknown keys inside a class are errors, as they are everywhere else.
func (a *AppClasses) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: apps is a mapping of class name to rule", n.Line)
	}
	classes := make(AppClasses, 0, len(n.Content)/2)
	var problems []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		c := AppClass{Name: n.Content[i].Value}
		for _, key := range unknownKeys(n.Content[i+1], reflect.TypeFor[AppClass]()) {
			problems = append(problems, fmt.Sprintf("line %d: field %s not found in type configs.AppClass",
				key.Line, key.Value))
		}
		if err := n.Content[i+1].Decode(&c); err != nil {
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				return err
			}
			problems = append(problems, te.Errors...)
		}
		classes = append(classes, c)
	}
	if len(problems) > 0 {
		return &yaml.TypeError{Errors: problems}
	}
	*a = classes
	return nil
}

// unknownKeys returns the keys of mapping n that are not yaml fields of struct t.
func unknownKeys(n *yaml.Node, t reflect.Type) []*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var unknown []*yaml.Node
	for i := 0; i < len(n.Content); i += 2 {
		key := n.Content[i]
		if _, ok := fieldType(t, key.Value); !ok && !isMergeKey(key) {
			unknown = append(unknown, key)
		}
	}
	return unknown
}
