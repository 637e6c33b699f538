package main

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sockshaper/sockshaper/configs"
)

// TestDocsLinksResolve: every relative link of README.md and docs/*.md names a
// file of the repository, and every #anchor a heading (or an explicit id) of
// the file it points into, so that moving a section cannot leave a dead link.
func TestDocsLinksResolve(t *testing.T) {
	docs := readDocs(t)
	anchors := make(map[string]map[string]bool, len(docs))
	for _, d := range docs {
		anchors[d.path] = headingAnchors(d.text)
	}
	links := 0
	for _, d := range docs {
		for _, problem := range brokenLinks(d, anchors, fileExists) {
			t.Error(problem)
		}
		links += len(markdownLinks(d.text))
	}
	if links < 50 {
		t.Fatalf("found only %d links in the documentation: the link pattern is broken", links)
	}
}

// fileExists reports whether rel, a path from the repository root, exists.
func fileExists(rel string) bool {
	_, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	return err == nil
}

// linkPattern matches a Markdown inline link or image: [text](target "title").
var linkPattern = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)

// markdownLinks returns the targets of the inline links of text outside code
// (fenced blocks and `spans`), where brackets are literal.
func markdownLinks(text string) []string {
	var targets []string
	for _, line := range proseLines(text) {
		line = regexp.MustCompile("`[^`]*`").ReplaceAllString(line, "")
		for _, m := range linkPattern.FindAllStringSubmatch(line, -1) {
			targets = append(targets, m[1])
		}
	}
	return targets
}

// proseLines returns the lines of text outside fenced code blocks.
func proseLines(text string) []string {
	var lines []string
	fenced := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			lines = append(lines, l)
		}
	}
	return lines
}

// brokenLinks returns a problem for each relative link of d that names no file
// (exists answers for paths from the repository root) or an anchor that the
// Markdown file it points into lacks. Links with a scheme are not followed.
func brokenLinks(d docFile, anchors map[string]map[string]bool, exists func(string) bool) []string {
	var problems []string
	for _, target := range markdownLinks(d.text) {
		if regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`).MatchString(target) {
			continue
		}
		file, anchor, _ := strings.Cut(target, "#")
		dest := d.path
		if file != "" {
			dest = path.Clean(path.Join(path.Dir(d.path), file))
			if strings.HasPrefix(dest, "../") || !exists(dest) {
				problems = append(problems, fmt.Sprintf("%s: link %q: no file %s", d.path, target, dest))
				continue
			}
		}
		if anchor == "" {
			continue
		}
		known, ok := anchors[dest]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: link %q: anchor into %s, which is not a checked document", d.path, target, dest))
			continue
		}
		if !known[anchor] {
			problems = append(problems, fmt.Sprintf("%s: link %q: %s has no heading with anchor #%s", d.path, target, dest, anchor))
		}
	}
	return problems
}

// headingAnchors returns the anchors GitHub gives the headings of text (and
// any explicit <a id="..."> or name="..."): lower case, punctuation other than
// - and _ dropped, spaces as -, a repeated one suffixed -1, -2...
func headingAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, l := range proseLines(text) {
		for _, m := range regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`).FindAllStringSubmatch(l, -1) {
			anchors[m[1]] = true
		}
		h := regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`).FindStringSubmatch(l)
		if h == nil {
			continue
		}
		slug := githubSlug(h[1])
		if n := seen[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

// githubSlug is the anchor GitHub derives from a heading's text.
func githubSlug(heading string) string {
	heading = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127 && isLetter(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isLetter reports whether r, beyond ASCII, is a letter GitHub keeps (é, ü...).
func isLetter(r rune) bool {
	return strings.ToLower(string(r)) != strings.ToUpper(string(r))
}

// TestDocsLinkCheckCatchesBreaks: the link check finds a missing file, a
// missing anchor and a link into a file with a repeated heading.
func TestDocsLinkCheckCatchesBreaks(t *testing.T) {
	anchors := map[string]map[string]bool{
		"docs/a.md": headingAnchors("# Title\n## Install (.deb)\n## Notes\n## Notes\n```\n# not a heading\n```\n"),
	}
	d := docFile{path: "docs/b.md", text: strings.Join([]string{
		"[ok](a.md#install-deb) [dup](a.md#notes-1) [root](../README.md)",
		"[gone](missing.md) [bad](a.md#nowhere) [code](a.md#not-a-heading)",
		"`[span](nothing.md)` [web](https://example.org/x.md)",
	}, "\n")}
	exists := func(p string) bool { return p == "docs/a.md" || p == "README.md" }
	got := brokenLinks(d, anchors, exists)
	want := []string{"missing.md", "#nowhere", "#not-a-heading"}
	if len(got) != len(want) {
		t.Fatalf("problems %q, want one each for %q", got, want)
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("problem %d = %q, want it to name %s", i, got[i], w)
		}
	}
}

// TestDocsConfigExamplesLoad: every ```yaml block of the documentation is a
// config (or a fragment of one) that configs.Parse accepts, so that no example
// an operator copies is refused by the daemon.
func TestDocsConfigExamplesLoad(t *testing.T) {
	blocks := 0
	for _, d := range readDocs(t) {
		for _, b := range yamlBlocks(d.text) {
			blocks++
			if _, err := configs.Parse([]byte(b.text), fmt.Sprintf("%s:%d", d.path, b.line)); err != nil {
				t.Errorf("the example at %s:%d does not load:\n%v", d.path, b.line, err)
			}
		}
	}
	if blocks < 10 {
		t.Fatalf("found only %d yaml blocks", blocks)
	}
}

// yamlBlock is a fenced ```yaml block: its first line's number and its text.
type yamlBlock struct {
	line int
	text string
}

// yamlBlocks returns the ```yaml blocks of text.
func yamlBlocks(text string) []yamlBlock {
	var blocks []yamlBlock
	var cur *yamlBlock
	for i, l := range strings.Split(text, "\n") {
		switch {
		case cur == nil && strings.TrimSpace(l) == "```yaml":
			cur = &yamlBlock{line: i + 2}
		case cur != nil && strings.HasPrefix(strings.TrimSpace(l), "```"):
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		}
	}
	return blocks
}
