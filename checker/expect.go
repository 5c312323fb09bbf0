package checker

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/util/jsonpath"
)

// The operators of an expectation, in the order messages list them.
var expectOps = []string{"equals", "matches", "exists", "contains", "gte", "lte", "len"}

// Expectation is one JSONPath test on a Kubernetes object.
type Expectation struct {
	// Path is the JSONPath as the author wrote it, braces optional:
	// ".status.readyReplicas" or "{.spec.containers[*].image}".
	Path string
	// Op is one of equals, matches, exists, contains, gte, lte, len.
	Op string
	// Value is what Op compares with, as JSON types (float64 for numbers,
	// string, bool, []any, map[string]any, nil). Unused by matches.
	Value any
	// Regexp is the compiled pattern of matches.
	Regexp *regexp.Regexp
}

// template is Path with braces, as jsonpath wants it.
func (x Expectation) template() string {
	p := strings.TrimSpace(x.Path)
	if strings.HasPrefix(p, "{") {
		return p
	}
	if !strings.HasPrefix(p, ".") && !strings.HasPrefix(p, "[") {
		p = "." + p
	}
	return "{" + p + "}"
}

// display is Path without braces, for messages.
func (x Expectation) display() string {
	p := strings.TrimSpace(x.Path)
	if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") && strings.Count(p, "{") == 1 {
		p = strings.TrimSpace(p[1 : len(p)-1])
	}
	return p
}

func compileExpectations(n *yaml.Node, path string) ([]Expectation, error) {
	if n == nil {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errAt(n, "%s must be a list", path)
	}
	out := make([]Expectation, 0, len(n.Content))
	for i, item := range n.Content {
		x, err := compileExpectation(item, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

func compileExpectation(n *yaml.Node, path string) (Expectation, error) {
	f, err := mapping(n, path, append([]string{"path"}, expectOps...)...)
	if err != nil {
		return Expectation{}, err
	}
	var x Expectation
	if x.Path, err = f.required("path"); err != nil {
		return x, err
	}
	if err := jsonpath.New("expect").AllowMissingKeys(true).Parse(x.template()); err != nil {
		return x, errAt(f.get("path"), "%s.path: invalid JSONPath %s: %v", path, x.Path, err)
	}
	var ops []string
	for _, op := range expectOps {
		if _, present := f.vals[op]; present {
			ops = append(ops, op)
		}
	}
	switch len(ops) {
	case 0:
		return x, errAt(f.node, "%s: one of %s is required", path, strings.Join(expectOps, ", "))
	case 1:
	default:
		return x, errAt(f.key(ops[1]), "%s: use only one of %s (found %s)", path, strings.Join(expectOps, ", "), strings.Join(ops, " and "))
	}
	x.Op = ops[0]
	v := f.vals[x.Op]
	opPath := path + "." + x.Op
	switch x.Op {
	case "matches":
		if x.Regexp, err = f.regexp("matches"); err != nil {
			return x, err
		}
		if x.Regexp == nil {
			return x, errAt(v, "%s must be a regexp", opPath)
		}
	case "exists":
		b, ok, err := f.boolean("exists")
		if err != nil {
			return x, err
		}
		if !ok {
			return x, errAt(v, "%s must be true or false", opPath)
		}
		x.Value = b
	case "gte", "lte":
		var raw any
		if err := v.Decode(&raw); err != nil {
			return x, errAt(v, "%s must be a number", opPath)
		}
		x.Value = normalize(raw)
		if _, ok := number(x.Value); !ok || v.Kind != yaml.ScalarNode {
			return x, errAt(v, "%s must be a number or a quantity like 500m or 1Gi", opPath)
		}
	case "len":
		k, err := intNode(v, opPath)
		if err != nil {
			return x, err
		}
		if k < 0 {
			return x, errAt(v, "%s must not be negative", opPath)
		}
		x.Value = float64(k)
	default: // equals, contains
		var raw any
		if err := v.Decode(&raw); err != nil {
			return x, errAt(v, "%s: %v", opPath, err)
		}
		if x.Op == "contains" && isNull(v) {
			return x, errAt(v, "%s needs a value", opPath)
		}
		x.Value = normalize(raw)
	}
	return x, nil
}

// normalize turns YAML- or JSON-decoded values into JSON types: float64
// numbers, map[string]any, []any.
func normalize(v any) any {
	switch t := v.(type) {
	case int:
		return float64(t)
	case int8:
		return float64(t)
	case int16:
		return float64(t)
	case int32:
		return float64(t)
	case int64:
		return float64(t)
	case uint:
		return float64(t)
	case uint8:
		return float64(t)
	case uint16:
		return float64(t)
	case uint32:
		return float64(t)
	case uint64:
		return float64(t)
	case float32:
		return float64(t)
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return t.String()
		}
		return f
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = normalize(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[fmt.Sprint(k)] = normalize(e)
		}
		return out
	}
	return v
}

// number reads a number, or a string holding a number or a Kubernetes
// quantity ("500m", "1Gi").
func number(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, true
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(t), 64); err == nil {
			return f, true
		}
		q, err := resource.ParseQuantity(strings.TrimSpace(t))
		if err != nil {
			return 0, false
		}
		return q.AsApproximateFloat64(), true
	}
	return 0, false
}

// scalarText is the text of a scalar, as YAML would write it.
func scalarText(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case float64:
		return formatNumber(t), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// format writes a value for a message: strings quoted, numbers plain, lists
// and maps as compact JSON, clipped.
func format(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(clip(t, maxLine))
	case float64:
		return formatNumber(t)
	case bool:
		return strconv.FormatBool(t)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return clip(fmt.Sprint(v), maxLine)
	}
	return clip(string(b), maxLine)
}

// equal compares an expected value with a found one. Numbers compare as
// numbers; a string compares with the text of a number or bool, so
// `equals: "3"` matches 3 and `equals: 3` matches the annotation "3".
func equal(want, found any) bool {
	switch w := want.(type) {
	case float64:
		if f, ok := found.(float64); ok {
			return w == f
		}
	case string:
		if f, ok := found.(string); ok {
			return w == f
		}
	case bool:
		if f, ok := found.(bool); ok {
			return w == f
		}
	case nil:
		return found == nil
	default:
		return reflect.DeepEqual(want, found)
	}
	ws, ok1 := scalarText(want)
	fs, ok2 := scalarText(found)
	return ok1 && ok2 && ws == fs
}

// subset says whether found holds want: equal scalars, a map with at least
// want's keys and values, or a list holding each of want's elements.
func subset(want, found any) bool {
	switch w := want.(type) {
	case map[string]any:
		f, ok := found.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			fv, ok := f[k]
			if !ok || !subset(wv, fv) {
				return false
			}
		}
		return true
	case []any:
		f, ok := found.([]any)
		if !ok {
			return false
		}
		for _, wv := range w {
			if !containsElement(f, wv) {
				return false
			}
		}
		return true
	}
	return equal(want, found)
}

func containsElement(list []any, want any) bool {
	for _, e := range list {
		if subset(want, e) {
			return true
		}
	}
	return false
}

// found is what a JSONPath selected in an object.
type found struct {
	values []any // each result, in order
}

func (f found) none() bool {
	return len(f.values) == 0 || (len(f.values) == 1 && f.values[0] == nil)
}

// value is the single result, or the results as a list.
func (f found) value() any {
	if len(f.values) == 1 {
		return f.values[0]
	}
	return f.values
}

// elements is a list to look into: the results, or the one list found.
func (f found) elements() []any {
	if len(f.values) == 1 {
		if l, ok := f.values[0].([]any); ok {
			return l
		}
	}
	return f.values
}

// lookup evaluates the expectation's JSONPath on obj. A fresh parser is
// built each time: jsonpath.JSONPath keeps state while it runs.
func (x Expectation) lookup(obj map[string]any) (found, error) {
	j := jsonpath.New("expect").AllowMissingKeys(true)
	if err := j.Parse(x.template()); err != nil {
		return found{}, fmt.Errorf("parse JSONPath %s: %w", x.Path, err)
	}
	results, err := j.FindResults(obj)
	if err != nil {
		return found{}, fmt.Errorf("evaluate JSONPath %s: %w", x.Path, err)
	}
	var f found
	for _, rs := range results {
		for _, r := range rs {
			if !r.IsValid() {
				f.values = append(f.values, nil)
				continue
			}
			f.values = append(f.values, normalize(r.Interface()))
		}
	}
	return f, nil
}

// eval tests obj. detail completes "<object> <path>": on a pass "is 3", on
// a failure ": expected 3, found 2". err means the path could not be
// evaluated on this object (a filter on a string, say).
func (x Expectation) eval(obj map[string]any) (ok bool, detail string, err error) {
	f, err := x.lookup(obj)
	if err != nil {
		return false, "", err
	}
	ok, detail = x.judge(f)
	return ok, detail, nil
}

func (x Expectation) judge(f found) (bool, string) {
	switch x.Op {
	case "exists":
		want := x.Value.(bool)
		switch {
		case want && !f.none():
			return true, "is set (" + format(f.value()) + ")"
		case want:
			return false, ": expected it to be set, found nothing"
		case f.none():
			return true, "is not set"
		default:
			return false, ": expected it to be unset, found " + format(f.value())
		}
	case "matches":
		if f.none() {
			return false, ": expected a match for " + x.Regexp.String() + ", found nothing"
		}
		for _, e := range f.elements() {
			s, ok := scalarText(e)
			if !ok || !x.Regexp.MatchString(s) {
				return false, ": expected a match for " + x.Regexp.String() + ", found " + format(f.value())
			}
		}
		return true, "matches " + x.Regexp.String() + " (" + format(f.value()) + ")"
	case "equals":
		if x.Value == nil && f.none() {
			return true, "is not set"
		}
		if f.none() {
			return false, ": expected " + format(x.Value) + ", found nothing"
		}
		if equal(x.Value, f.value()) {
			return true, "is " + format(f.value())
		}
		return false, ": expected " + format(x.Value) + ", found " + format(f.value())
	case "contains":
		if f.none() {
			return false, ": expected to contain " + format(x.Value) + ", found nothing"
		}
		if contains(f, x.Value) {
			return true, "contains " + format(x.Value)
		}
		return false, ": expected to contain " + format(x.Value) + ", found " + format(f.value())
	case "gte", "lte":
		word := map[string]string{"gte": "at least", "lte": "at most"}[x.Op]
		want, _ := number(x.Value)
		if f.none() {
			return false, ": expected " + word + " " + format(x.Value) + ", found nothing"
		}
		got, ok := number(f.value())
		if !ok {
			return false, ": expected a number " + word + " " + format(x.Value) + ", found " + format(f.value())
		}
		if (x.Op == "gte" && got >= want) || (x.Op == "lte" && got <= want) {
			return true, "is " + format(f.value()) + " (" + word + " " + format(x.Value) + ")"
		}
		return false, ": expected " + word + " " + format(x.Value) + ", found " + format(f.value())
	case "len":
		want := int(x.Value.(float64))
		n := 0
		if !f.none() {
			var ok bool
			if n, ok = length(f); !ok {
				return false, fmt.Sprintf(": expected length %d, found %s, which has no length", want, format(f.value()))
			}
		}
		if n == want {
			return true, fmt.Sprintf("has length %d", n)
		}
		return false, fmt.Sprintf(": expected length %d, found %d", want, n)
	}
	return false, ": unknown operator " + x.Op
}

// contains looks for want in what was found: a substring of a string, an
// element of a list (maps match by subset), a key or sub-map of a map.
func contains(f found, want any) bool {
	v := f.value()
	switch t := v.(type) {
	case string:
		w, ok := scalarText(want)
		return ok && strings.Contains(t, w)
	case map[string]any:
		if w, ok := want.(string); ok {
			_, has := t[w]
			return has
		}
		return subset(want, t)
	}
	return containsElement(f.elements(), want)
}

// length of a list, map or string found.
func length(f found) (int, bool) {
	if len(f.values) != 1 {
		return len(f.values), true
	}
	switch t := f.values[0].(type) {
	case []any:
		return len(t), true
	case map[string]any:
		return len(t), true
	case string:
		return len([]rune(t)), true
	}
	return 0, false
}

// names formats a sorted list of names for "(found: a, b)", clipped to ten.
func names(list []string) string {
	list = append([]string(nil), list...)
	sort.Strings(list)
	list = compactStrings(list)
	if len(list) > 10 {
		return strings.Join(list[:10], ", ") + fmt.Sprintf(" and %d more", len(list)-10)
	}
	return strings.Join(list, ", ")
}

func compactStrings(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// foundList is " (found: a, b)" or " (found none)".
func foundList(list []string) string {
	if len(list) == 0 {
		return " (found none)"
	}
	return " (found: " + names(list) + ")"
}
