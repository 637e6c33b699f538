package configs

import (
	"bytes"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Marshal returns f as YAML that [LoadAppsFile] reads back: comment (lines
// without "#", may be empty) as the file's head comment, the source header,
// then each class with its domains, networks and ports one item a line, so
// that a diff of two versions shows what Microsoft changed. Empty lists are
// left out. Values are written as given; validation happens when the file is
// loaded.
func (f *AppsFile) Marshal(comment string) ([]byte, error) {
	s := f.Source
	source := mapping(
		"url", str(s.URL),
		"instance", str(s.Instance),
		"version", str(s.Version),
		"generated", str(s.Generated),
		"categories", flowSeq(strNodes(s.Categories)),
		"endpoint_sets", flowSeq(intNodes(s.EndpointSets)),
	)
	apps := mapping()
	for _, c := range f.Apps {
		class := mapping()
		addList(class, "domains", c.Domains)
		addList(class, "networks", c.Networks)
		ports := make([]string, len(c.Ports))
		for i, p := range c.Ports {
			ports[i] = p.String()
		}
		addList(class, "ports", ports)
		apps.Content = append(apps.Content, str(c.Name), class)
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, HeadComment: comment,
		Content: []*yaml.Node{mapping("source", source, "apps", apps)}}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// mapping builds a mapping node of alternating keys and value nodes.
func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Content = append(n.Content, str(kv[i].(string)), kv[i+1].(*yaml.Node))
	}
	return n
}

// str is a string scalar; the encoder quotes it when it would read back as
// another type (a version of ten digits, say).
func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func strNodes(ss []string) []*yaml.Node {
	out := make([]*yaml.Node, len(ss))
	for i, s := range ss {
		out[i] = str(s)
	}
	return out
}

func intNodes(ns []int64) []*yaml.Node {
	out := make([]*yaml.Node, len(ns))
	for i, n := range ns {
		out[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(n, 10)}
	}
	return out
}

func flowSeq(items []*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: items}
}

// addList adds key with items as a block sequence to m, unless items is empty.
func addList(m *yaml.Node, key string, items []string) {
	if len(items) > 0 {
		m.Content = append(m.Content, str(key), &yaml.Node{Kind: yaml.SequenceNode, Content: strNodes(items)})
	}
}
