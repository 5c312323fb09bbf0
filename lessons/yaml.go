package lessons

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlErrLine finds the line yaml.v3 puts in its syntax errors
// ("yaml: line 3: mapping values are not allowed in this context"); it only
// ever reads error messages, never lesson source.
var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses src as one YAML document and returns its root node, or
// nil for an empty document. On a syntax error it returns the 1-based line
// inside src (0 when yaml.v3 gives none) and a message without the "yaml:"
// noise.
func parseYAML(src []byte) (root *yaml.Node, errLine int, errMsg string) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		msg := err.Error()
		if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
			n, convErr := strconv.Atoi(m[1])
			if convErr == nil {
				if zeroBasedLine(m[2]) {
					n++
				}
				// "unexpected end of stream" may point past the last line.
				last := bytes.Count(src, []byte("\n"))
				if len(src) > 0 && src[len(src)-1] != '\n' {
					last++
				}
				return nil, max(1, min(n, last)), m[2]
			}
		}
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = te.Errors[0]
		}
		return nil, 0, strings.TrimPrefix(msg, "yaml: ")
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, 0, ""
	}
	return resolve(doc.Content[0]), 0, ""
}

// yamlParserErrors start the messages of yaml.v3's parser (as opposed to
// its scanner) errors. yaml.v3 numbers the lines of those from 0, and of
// scanner errors from 1 (see parser.fail in its decode.go).
var yamlParserErrors = []string{
	"did not find expected",
	"found duplicate %",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// zeroBasedLine reports whether yaml.v3 gave the line of the error msg
// counting from 0.
func zeroBasedLine(msg string) bool {
	for _, p := range yamlParserErrors {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 32; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is missing or an explicit YAML null.
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// entry is one key of a YAML mapping.
type entry struct {
	key  string
	line int // YAML line of the key
	val  *yaml.Node
}

// yamlReader reads the mappings of one YAML document (front matter,
// track.yaml, a check block) and reports problems at file lines.
type yamlReader struct {
	p      *problems
	base   int    // file line = base + YAML line
	prefix string // put before every message: "front matter: ", "check web: "
}

// line is the file line of n, or of the document's first line when n has
// none.
func (r *yamlReader) line(n *yaml.Node) int {
	if n == nil || n.Line == 0 {
		return r.base + 1
	}
	return r.base + n.Line
}

// add reports a problem at YAML line yamlLine.
func (r *yamlReader) add(yamlLine int, format string, args ...any) {
	line := r.base + yamlLine
	if yamlLine <= 0 {
		line = r.base + 1
	}
	r.p.add(line, "%s%s", r.prefix, fmt.Sprintf(format, args...))
}

// entries lists the keys of mapping n in order, reporting duplicate keys
// and keys that are not among known (a typo must not pass silently).
// unknown receives the keys that are not known; when it is nil they are
// reported as `unknown key "x"`.
func (r *yamlReader) entries(n *yaml.Node, known []string, unknown func(entry)) map[string]entry {
	out := make(map[string]entry)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		e := entry{line: n.Content[i].Line, val: resolve(n.Content[i+1])}
		if k != nil && k.Kind == yaml.ScalarNode {
			e.key = k.Value
		}
		if first, dup := out[e.key]; dup {
			r.add(e.line, "duplicate key %q (first at line %d)", e.key, r.base+first.line)
			continue
		}
		if !contains(known, e.key) {
			if unknown != nil {
				unknown(e)
			} else {
				r.add(e.line, "unknown key %q%s", e.key, suggest(e.key, known))
			}
			continue
		}
		out[e.key] = e
	}
	return out
}

// text reads a scalar as text; null is "".
func (r *yamlReader) text(e entry) (string, bool) {
	if isNull(e.val) {
		return "", true
	}
	if e.val.Kind != yaml.ScalarNode {
		r.add(e.line, "%s: want text, got %s", e.key, describe(e.val))
		return "", false
	}
	return e.val.Value, true
}

// integer reads a whole number; null is 0.
func (r *yamlReader) integer(e entry) (int, bool) {
	if isNull(e.val) {
		return 0, true
	}
	var v int
	if e.val.Kind != yaml.ScalarNode || e.val.Decode(&v) != nil {
		r.add(e.line, "%s: want a whole number, got %s", e.key, describe(e.val))
		return 0, false
	}
	return v, true
}

// boolean reads true or false; null is false.
func (r *yamlReader) boolean(e entry) (bool, bool) {
	if isNull(e.val) {
		return false, true
	}
	var v bool
	if e.val.Kind != yaml.ScalarNode || e.val.Tag != "!!bool" || e.val.Decode(&v) != nil {
		r.add(e.line, "%s: want true or false, got %s", e.key, describe(e.val))
		return false, false
	}
	return v, true
}

// list reads a sequence of non-empty scalars; null is an empty list.
func (r *yamlReader) list(e entry) ([]string, bool) {
	if isNull(e.val) {
		return nil, true
	}
	if e.val.Kind != yaml.SequenceNode {
		r.add(e.line, "%s: want a list such as [a, b], got %s", e.key, describe(e.val))
		return nil, false
	}
	out := make([]string, 0, len(e.val.Content))
	ok := true
	for i, item := range e.val.Content {
		item = resolve(item)
		if item == nil || item.Kind != yaml.ScalarNode || isNull(item) || strings.TrimSpace(item.Value) == "" {
			line := e.line
			if item != nil && item.Line > 0 {
				line = item.Line
			}
			r.add(line, "%s: item %d: want text, got %s", e.key, i+1, describe(item))
			ok = false
			continue
		}
		out = append(out, item.Value)
	}
	return out, ok
}

// describe names what a YAML node holds, for messages.
func describe(n *yaml.Node) string {
	switch {
	case n == nil || isNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		return strconv.Quote(n.Value)
	default:
		return "something else"
	}
}

// contains reports whether s is in list.
func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// suggest returns `; did you mean "x"?` when one of known is within two
// edits of s, else "".
func suggest(s string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(s, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
