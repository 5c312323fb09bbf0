package checker

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Kinds are the check kinds Compile knows, in the order doc.go lists them.
var kinds = []string{"command", "kube", "pods", "rollout", "http", "docker"}

// commonKeys are parsed by the lessons package; Compile ignores them.
var commonKeys = []string{"id", "title", "hint", "timeout", "before", "points"}

// CompileError is a problem in a check block. Its message is short and names
// the key at fault ("kube.expect[1]: one of ... is required").
type CompileError struct {
	// Line counts from 1 at the first line of the YAML given to Compile; 0
	// when the problem has no line. Add it to the block's first line to
	// point at the file.
	Line int
	Msg  string
}

// Error returns the message, without the line.
func (e *CompileError) Error() string { return e.Msg }

// YAMLLine is Line, for the lessons package, which adds it to the line of
// the block's opening fence to point at the file.
func (e *CompileError) YAMLLine() int { return e.Line }

// errAt is a CompileError at node n.
func errAt(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &CompileError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Compile parses and validates the kind-specific body of a check block. raw
// is the whole block's YAML; the keys every kind shares (id, title, hint,
// timeout, before) are left to the caller. Unknown keys are errors. The
// result is a *Spec; errors are *CompileError.
func Compile(kind string, raw []byte) (any, error) {
	spec, err := compile(kind, raw)
	if err != nil {
		return nil, err
	}
	return spec, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func compile(kind string, raw []byte) (*Spec, error) {
	if kind == "quiz" {
		return nil, &CompileError{Msg: "quiz blocks are graded with GradeQuiz, not compiled"}
	}
	if !slices.Contains(kinds, kind) {
		return nil, &CompileError{Msg: fmt.Sprintf("unknown check kind %q (known: %s)", kind, strings.Join(kinds, ", "))}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return nil, &CompileError{Line: line, Msg: "invalid YAML: " + msg}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &CompileError{Msg: "empty check block"}
	}
	known := append(slices.Clone(commonKeys), kinds...)
	top, err := mapping(doc.Content[0], "", known...)
	if err != nil {
		return nil, err
	}
	for _, k := range kinds {
		if k != kind && top.has(k) {
			return nil, errAt(top.key(k), "a check has one kind: found both %s and %s", kind, k)
		}
	}
	body := top.get(kind)
	if body == nil {
		return nil, errAt(top.node, "%s is required", kind)
	}
	spec := &Spec{Kind: kind}
	switch kind {
	case "command":
		spec.Command, err = compileCommand(body)
	case "kube":
		spec.Kube, err = compileKube(body)
	case "pods":
		spec.Pods, err = compilePods(body)
	case "rollout":
		spec.Rollout, err = compileRollout(body)
	case "http":
		spec.HTTP, err = compileHTTP(body)
	case "docker":
		spec.Docker, err = compileDocker(body)
	}
	if err != nil {
		return nil, err
	}
	return spec, nil
}

// fields is a YAML mapping read key by key, after unknown and repeated keys
// were refused.
type fields struct {
	path string // of the mapping: "kube", "kube.expect[1]"; "" at the top
	node *yaml.Node
	keys map[string]*yaml.Node
	vals map[string]*yaml.Node
}

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// mapping reads n as a mapping whose keys are all in known.
func mapping(n *yaml.Node, path string, known ...string) (*fields, error) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		if path == "" {
			return nil, errAt(n, "a check block must be a YAML mapping")
		}
		return nil, errAt(n, "%s must be a mapping", path)
	}
	f := &fields{path: path, node: n, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		name := k.Value
		if k.Kind != yaml.ScalarNode || !slices.Contains(known, name) {
			return nil, errAt(k, "unknown key %s%s", f.join(name), suggest(name, known))
		}
		if _, dup := f.vals[name]; dup {
			return nil, errAt(k, "%s is given twice", f.join(name))
		}
		f.keys[name], f.vals[name] = k, v
	}
	return f, nil
}

// join is the full path of key.
func (f *fields) join(key string) string {
	if f.path == "" {
		return key
	}
	return f.path + "." + key
}

// isNull says whether n is YAML null (an empty value counts).
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// has says whether key is present with a non-null value.
func (f *fields) has(key string) bool { return !isNull(f.vals[key]) }

// get is the value of key, or nil when absent or null.
func (f *fields) get(key string) *yaml.Node {
	if !f.has(key) {
		return nil
	}
	return f.vals[key]
}

// key is the node of key itself, for error lines; the mapping when absent.
func (f *fields) key(key string) *yaml.Node {
	if k := f.keys[key]; k != nil {
		return k
	}
	return f.node
}

// str reads a scalar as the text written; absent gives "".
func (f *fields) str(key string) (string, error) {
	n := f.get(key)
	if n == nil {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", errAt(n, "%s must be a string", f.join(key))
	}
	return n.Value, nil
}

// required reads a scalar that must be present and not empty.
func (f *fields) required(key string) (string, error) {
	s, err := f.str(key)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "" {
		return "", errAt(f.key(key), "%s is required", f.join(key))
	}
	return s, nil
}

// integer reads a whole number; ok is false when absent.
func (f *fields) integer(key string) (v int, ok bool, err error) {
	n := f.get(key)
	if n == nil {
		return 0, false, nil
	}
	v, err = intNode(n, f.join(key))
	return v, err == nil, err
}

func intNode(n *yaml.Node, path string) (int, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, errAt(n, "%s must be a whole number", path)
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		var i int
		if derr := n.Decode(&i); derr != nil {
			return 0, errAt(n, "%s must be a whole number", path)
		}
		v = i
	}
	return v, nil
}

// boolean reads true or false; ok is false when absent.
func (f *fields) boolean(key string) (v, ok bool, err error) {
	n := f.get(key)
	if n == nil {
		return false, false, nil
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return false, false, errAt(n, "%s must be true or false", f.join(key))
	}
	if err := n.Decode(&v); err != nil {
		return false, false, errAt(n, "%s must be true or false", f.join(key))
	}
	return v, true, nil
}

// regexp reads and compiles a regular expression; nil when absent.
func (f *fields) regexp(key string) (*regexp.Regexp, error) {
	s, err := f.str(key)
	if err != nil || s == "" {
		return nil, err
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, errAt(f.get(key), "%s: invalid regexp %q: %s", f.join(key), s, reError(err))
	}
	return re, nil
}

// reError is the useful part of a regexp error.
func reError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "error parsing regexp: ")
	return msg
}

// strings reads a list of scalars (a single scalar counts as a list of one).
func (f *fields) strings(key string) ([]string, error) {
	n := f.get(key)
	if n == nil {
		return nil, nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errAt(n, "%s must be a list of strings", f.join(key))
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		item = deref(item)
		if item.Kind != yaml.ScalarNode || isNull(item) {
			return nil, errAt(item, "%s[%d] must be a string", f.join(key), i)
		}
		out = append(out, item.Value)
	}
	return out, nil
}

// suggest is " (did you mean X?)" when a known key is a typo away.
func suggest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
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

// Range bounds a whole number: a count of objects or of restarts.
type Range struct {
	Min int
	Max int // negative: no upper bound
}

// Contains says whether n is within the range.
func (r Range) Contains(n int) bool {
	return n >= r.Min && (r.Max < 0 || n <= r.Max)
}

// String is the range in words: "3", "at least 1", "at most 2", "2 to 4".
func (r Range) String() string {
	switch {
	case r.Max < 0:
		return fmt.Sprintf("at least %d", r.Min)
	case r.Min == r.Max:
		return strconv.Itoa(r.Min)
	case r.Min <= 0:
		return fmt.Sprintf("at most %d", r.Max)
	default:
		return fmt.Sprintf("%d to %d", r.Min, r.Max)
	}
}

// countRange reads "count: N" or "count: {min: N, max: M}".
func (f *fields) countRange(key string) (*Range, error) {
	n := f.get(key)
	if n == nil {
		return nil, nil
	}
	path := f.join(key)
	if n.Kind == yaml.ScalarNode {
		v, err := intNode(n, path)
		if err != nil {
			return nil, errAt(n, "%s must be a whole number or {min: N, max: N}", path)
		}
		if v < 0 {
			return nil, errAt(n, "%s must not be negative", path)
		}
		return &Range{Min: v, Max: v}, nil
	}
	m, err := mapping(n, path, "min", "max")
	if err != nil {
		return nil, err
	}
	return m.bounds("min", "max")
}

// bounds reads a range from two keys of a mapping (min/max or gte/lte).
func (f *fields) bounds(lo, hi string) (*Range, error) {
	r := &Range{Max: -1}
	v, okLo, err := f.integer(lo)
	if err != nil {
		return nil, err
	}
	if okLo {
		r.Min = v
	}
	v, okHi, err := f.integer(hi)
	if err != nil {
		return nil, err
	}
	if okHi {
		r.Max = v
	}
	switch {
	case !okLo && !okHi:
		return nil, errAt(f.node, "%s needs %s or %s", f.path, lo, hi)
	case r.Min < 0 || (okHi && r.Max < 0):
		return nil, errAt(f.node, "%s must not be negative", f.path)
	case okHi && r.Max < r.Min:
		return nil, errAt(f.node, "%s: %s %d is above %s %d", f.path, lo, r.Min, hi, r.Max)
	}
	return r, nil
}
