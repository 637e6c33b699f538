package configs

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem found in a config. [Load], [Parse] and [Config.Validate]
// return every problem they find as FieldErrors joined with [errors.Join], so a caller
// can list them all or pick them out with [errors.As].
type FieldError struct {
	// File is the config's source: its path or "embedded default".
	File string
	// Line is the 1-based line in File the problem is on; 0 when the field is not in
	// the file (a default value) or the line is unknown.
	Line int
	// Field is the dotted YAML path of the field, such as
	// "shaping.groups.students.upload" or "access.client_networks[2]"; empty when the
	// problem is with the YAML itself.
	Field string
	// Problem says what is wrong and, where it helps, what to write instead.
	Problem string
	// Err is the underlying error, if there is one; [FieldError.Unwrap] returns it.
	Err error
}

// Error returns "FILE:LINE: FIELD: PROBLEM", leaving out ":LINE" when Line is 0 and
// "FIELD: " when Field is empty.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// Unwrap returns the underlying error, or nil.
func (e *FieldError) Unwrap() error { return e.Err }

// pathElem is one step into the document: a mapping key, or a sequence index when
// index >= 0.
type pathElem struct {
	key   string
	index int
}

// fieldPath is a path into the document. It is kept as steps rather than a dotted
// string because user and group names may themselves contain dots.
type fieldPath []pathElem

func path(keys ...string) fieldPath {
	var p fieldPath
	for _, k := range keys {
		p = p.key(k)
	}
	return p
}

func (p fieldPath) key(k string) fieldPath {
	return append(slices.Clip(p), pathElem{key: k, index: -1})
}

func (p fieldPath) index(i int) fieldPath {
	return append(slices.Clip(p), pathElem{index: i})
}

// String writes the path as in YAML tools: keys joined by dots, indexes in brackets,
// and keys that are not plain words quoted in brackets (members["j.doe"]).
func (p fieldPath) String() string {
	var b strings.Builder
	for _, e := range p {
		switch {
		case e.index >= 0:
			fmt.Fprintf(&b, "[%d]", e.index)
		case e.key == "" || strings.Trim(e.key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "":
			fmt.Fprintf(&b, "[%s]", strconv.Quote(e.key))
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e.key)
		}
	}
	return b.String()
}

// document is a parsed config file kept as a node tree so that problems found in the
// decoded values can be reported at their line.
type document struct {
	file string
	root *yaml.Node // the top-level value; nil for an empty file
}

// line returns the line of the field at p, or of its nearest parent in the file, or 0
// when not even the top-level key is in the file. A key's line is where the key is
// written; an item's line is where the item is.
func (d *document) line(p fieldPath) int {
	n, line := d.root, 0
	for _, e := range p {
		if n = deref(n); n == nil {
			break
		}
		if e.index >= 0 {
			if n.Kind != yaml.SequenceNode || e.index >= len(n.Content) {
				break
			}
			n = n.Content[e.index]
			line = n.Line
			continue
		}
		key, value := lookupKey(n, e.key)
		if key == nil {
			break
		}
		n, line = value, key.Line
	}
	return line
}

func lookupKey(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

func isMergeKey(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && n.ShortTag() == "!!merge"
}

// yamlErrors turns an error of yaml.v3, whose messages read "yaml: line N: problem"
// or, for a TypeError, hold one "line N: problem" per problem, into FieldErrors that
// name the file.
func yamlErrors(file string, err error) []error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		line, problem := splitLine(err.Error())
		return []error{&FieldError{File: file, Line: line, Problem: problem, Err: err}}
	}
	errs := make([]error, len(te.Errors))
	for i, msg := range te.Errors {
		line, problem := splitLine(msg)
		errs[i] = &FieldError{File: file, Line: line, Problem: problem, Err: errors.New(msg)}
	}
	return errs
}

func splitLine(msg string) (int, string) {
	msg = strings.TrimPrefix(msg, "yaml: ")
	rest, ok := strings.CutPrefix(msg, "line ")
	if !ok {
		return 0, msg
	}
	num, problem, ok := strings.Cut(rest, ": ")
	line, err := strconv.Atoi(num)
	if !ok || err != nil {
		return 0, msg
	}
	return line, problem
}

// sortByLine orders problems as they appear in the file, with problems of fields
// that are not in the file (line 0) last, so that a reader can walk down the file.
func sortByLine(errs []error) {
	slices.SortStableFunc(errs, func(a, b error) int {
		return cmp.Compare(lineKey(a), lineKey(b))
	})
}

func lineKey(err error) int {
	var fe *FieldError
	if errors.As(err, &fe) && fe.Line > 0 {
		return fe.Line
	}
	return math.MaxInt
}
