package configs

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// shapeChecker walks the node tree along the Config type before it is decoded, to
// report every unknown key, duplicate key and badly written value with its field path
// and line. yaml.v3 finds the same problems, but stops at the first bad rate and
// reports only "line N" without the field; its errors remain the backstop for what
// this walk leaves to it (aliases and merge keys).
type shapeChecker struct {
	file string
	errs []error
}

func (d *document) checkShape() []error { return d.checkShapeOf(reflect.TypeFor[Config]()) }

// checkShapeOf is checkShape for a document of another type, such as [AppsFile].
func (d *document) checkShapeOf(t reflect.Type) []error {
	if d.root == nil {
		return nil
	}
	c := &shapeChecker{file: d.file}
	c.walk(d.root, t, nil)
	return c.errs
}

func (c *shapeChecker) add(n *yaml.Node, p fieldPath, err error, problem string) {
	c.errs = append(c.errs, &FieldError{File: c.file, Line: n.Line, Field: p.String(), Problem: problem, Err: err})
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func (c *shapeChecker) walk(n *yaml.Node, t reflect.Type, p fieldPath) {
	if n.Kind == yaml.AliasNode {
		// Checked where the anchor is defined; following aliases here could loop
		// or multiply the work, which yaml.v3 guards against when it decodes.
		return
	}
	for t.Kind() == reflect.Pointer { // an optional value: checked as the value
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[AppClasses]():
		c.entries(n, p, "a mapping of class name to rule", func(_, v *yaml.Node, kp fieldPath) {
			c.walk(v, reflect.TypeFor[AppClass](), kp)
		})
	case t == reflect.TypeFor[LDAPGroups]():
		c.entries(n, p, "a mapping of directory group DN to shaping group", func(_, v *yaml.Node, kp fieldPath) {
			c.walk(v, reflect.TypeFor[string](), kp)
		})
	case t.Kind() == reflect.Struct && t != reflect.TypeFor[PortRange]():
		c.entries(n, p, "a mapping", func(k, v *yaml.Node, kp fieldPath) {
			if ft, ok := fieldType(t, k.Value); ok {
				c.walk(v, ft, kp)
				return
			}
			c.add(k, kp, nil, "unknown field; known fields are "+strings.Join(knownFields(t), ", "))
		})
	case t.Kind() == reflect.Map:
		c.entries(n, p, "a mapping", func(_, v *yaml.Node, kp fieldPath) {
			c.walk(v, t.Elem(), kp)
		})
	case t.Kind() == reflect.Slice:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			c.add(n, p, nil, "must be a list, such as [a, b]")
			return
		}
		for i, item := range n.Content {
			c.walk(item, t.Elem(), p.index(i))
		}
	default:
		c.scalar(n, t, p)
	}
}

// entries checks that n is a mapping of plain, distinct keys and calls f for each
// entry. Merge keys ("<<") are left to yaml.v3.
func (c *shapeChecker) entries(n *yaml.Node, p fieldPath, want string, f func(k, v *yaml.Node, kp fieldPath)) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		c.add(n, p, nil, "must be "+want)
		return
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			c.add(k, p, nil, "mapping keys must be plain names")
			continue
		}
		kp := p.key(k.Value)
		if first, dup := seen[k.Value]; dup {
			c.add(k, kp, nil, fmt.Sprintf("is set twice (first on line %d)", first))
			continue
		}
		seen[k.Value] = k.Line
		f(k, v, kp)
	}
}

// scalar checks a single value by decoding it alone, so that the rules are exactly
// those of the decode that follows.
func (c *shapeChecker) scalar(n *yaml.Node, t reflect.Type, p fieldPath) {
	if n.Kind != yaml.ScalarNode {
		c.add(n, p, nil, "must be a single value, not a list or mapping")
		return
	}
	if isNull(n) {
		problem := "has no value; remove the key to keep the default"
		if t.Kind() == reflect.String {
			problem = `has no value; write "" for empty, or remove the key to keep the default`
		}
		c.add(n, p, nil, problem)
		return
	}
	var err error
	switch t {
	case reflect.TypeFor[Rate]():
		_, err = ParseRate(n.Value)
	case reflect.TypeFor[ByteSize]():
		_, err = ParseByteSize(n.Value)
	case reflect.TypeFor[PortRange]():
		_, err = ParsePortRange(n.Value)
	case reflect.TypeFor[DSCP]():
		_, err = ParseDSCP(n.Value)
	default:
		if err = n.Decode(reflect.New(t).Interface()); err != nil {
			c.add(n, p, err, scalarProblem(t))
			return
		}
	}
	if err != nil {
		c.add(n, p, err, err.Error())
	}
}

func scalarProblem(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "must be a duration with a unit, such as 10s, 5m or 1h"
	case t.Kind() == reflect.Bool:
		return "must be true or false"
	case t.Kind() == reflect.Int:
		return "must be a whole number"
	}
	return "must be a " + t.String()
}

// fieldType returns the type of the field of struct t that yaml.v3 decodes key into.
func fieldType(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		if name, ok := yamlName(t.Field(i)); ok && name == key {
			return t.Field(i).Type, true
		}
	}
	return nil, false
}

func knownFields(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		if name, ok := yamlName(t.Field(i)); ok {
			names = append(names, name)
		}
	}
	return names
}

// yamlName returns the key yaml.v3 uses for f: its yaml tag, else its lower-cased
// name; false for fields yaml.v3 skips.
func yamlName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return "", false
	case "":
		return strings.ToLower(f.Name), true
	}
	return name, true
}
