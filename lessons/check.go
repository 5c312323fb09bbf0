package lessons

import (
	"bytes"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// KindQuiz is the Kind of a check block with a question: (and of every
// quiz block).
const KindQuiz = "quiz"

// checkKinds are the kinds of check the checker evaluates, each named by
// the key that holds its body in a check block. A block with question: is
// a quiz instead.
var checkKinds = []string{"command", "kube", "pods", "rollout", "http", "docker"}

// minSandbox is the least sandbox each check kind can be evaluated in.
var minSandbox = map[string]SandboxKind{
	"command": SandboxShell,
	"docker":  SandboxDocker,
	"kube":    SandboxKubernetes,
	"pods":    SandboxKubernetes,
	"rollout": SandboxKubernetes,
	"http":    SandboxKubernetes,
	KindQuiz:  SandboxNone,
}

// sandboxRank orders sandbox kinds from least to most.
var sandboxRank = map[SandboxKind]int{SandboxNone: 0, SandboxShell: 1, SandboxDocker: 2, SandboxKubernetes: 3}

// checkCommonKeys are allowed in every check block; quizKeys only in quizzes.
var (
	checkCommonKeys = []string{"id", "title", "hint", "timeout", "before", "points"}
	quizKeys        = []string{"question", "options", "explain"}
	optionKeys      = []string{"text", "correct"}
)

// validID is what a check id may look like: it ends up in URLs, HTML
// attributes and the store.
var validID = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// kindList is the human list of kinds for messages.
const kindList = "command, kube, pods, rollout, http, docker, or question for a quiz"

// parseCheck reads one check (or quiz) block whose opening fence is on
// file line fence. It returns nil when the block is too broken to say
// anything more about (the problem has been reported).
func parseCheck(raw []byte, fence int, quizBlock bool, p *problems) *Check {
	c := &Check{Line: fence, Raw: bytes.Clone(raw)}
	r := &yamlReader{p: p, base: fence, prefix: "check: "}
	if len(bytes.TrimSpace(raw)) == 0 {
		p.add(fence, "check: empty block: want id, title and one of %s", kindList)
		return nil
	}
	root, errLine, errMsg := parseYAML(raw)
	if errMsg != "" {
		r.add(errLine, "bad YAML: %s", errMsg)
		return nil
	}
	if root == nil || root.Kind != yaml.MappingNode {
		p.add(fence, "check: want a mapping with id, title and one of %s, got %s", kindList, describe(root))
		return nil
	}

	// The id first, so that every later message can name the check.
	if v := lookup(root, "id"); v != nil && v.Kind == yaml.ScalarNode && !isNull(v) {
		c.ID = strings.TrimSpace(v.Value)
	}
	if c.ID != "" {
		r.prefix = "check " + c.ID + ": "
	}
	known := slices.Concat(checkCommonKeys, checkKinds, quizKeys)
	var unknown []entry
	keys := r.entries(root, known, func(e entry) { unknown = append(unknown, e) })
	switch e, ok := keys["id"]; {
	case ok && !isNull(e.val) && e.val.Kind != yaml.ScalarNode:
		r.text(e) // reports what is wrong
	case c.ID == "":
		p.add(fence, "%sid is required", r.prefix)
	case !validID.MatchString(c.ID):
		r.add(e.line, "id %q: use lowercase letters, digits and dashes", c.ID)
	}

	var kinds []string
	for _, k := range checkKinds {
		if _, ok := keys[k]; ok {
			kinds = append(kinds, k)
		}
	}
	if _, ok := keys["question"]; ok {
		kinds = append(kinds, "question")
	}
	for _, e := range unknown {
		if len(kinds) == 0 {
			r.add(e.line, "unknown check kind %q: want one of %s%s", e.key, kindList, suggest(e.key, known))
		} else {
			r.add(e.line, "unknown key %q%s", e.key, suggest(e.key, known))
		}
	}
	switch {
	case len(kinds) == 0 && len(unknown) == 0:
		p.add(fence, "%sno check kind: add one of %s", r.prefix, kindList)
	case len(kinds) > 1:
		p.add(fence, "%sseveral kinds (%s): a check block has exactly one", r.prefix, strings.Join(kinds, ", "))
	case len(kinds) == 1:
		c.Kind = kinds[0]
		if c.Kind == "question" {
			c.Kind = KindQuiz
		}
	}
	if quizBlock && c.Kind != "" && c.Kind != KindQuiz {
		p.add(fence, "%sa quiz block holds a question and options; put a %s check in a check block", r.prefix, c.Kind)
		c.Kind = ""
	}

	if e, ok := keys["title"]; ok {
		t, _ := r.text(e)
		c.Title = strings.TrimSpace(t)
	}
	if e, ok := keys["hint"]; ok {
		h, _ := r.text(e)
		c.Hint = strings.TrimSpace(h)
	}
	c.Points = 1
	if e, ok := keys["points"]; ok {
		if v, ok := r.integer(e); ok {
			if v < 0 {
				r.add(e.line, "points: want 0 or more, got %d", v)
			}
			c.Points = v
		}
	}
	if c.Kind == KindQuiz {
		readQuiz(c, keys, r)
		return c
	}
	if c.Title == "" && c.Kind != "" {
		line := fence
		if e, ok := keys["title"]; ok {
			line = r.base + e.line
		}
		p.add(line, "%stitle is required", r.prefix)
	}
	for _, k := range quizKeys[1:] {
		if e, ok := keys[k]; ok && c.Kind != "" {
			r.add(e.line, "%s only applies to a quiz", k)
		}
	}
	if e, ok := keys["timeout"]; ok {
		if s, ok := r.text(e); ok && s != "" {
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				r.add(e.line, "bad timeout %q: want a duration such as 30s or 2m", s)
			case d <= 0:
				r.add(e.line, "bad timeout %q: want more than zero", s)
			default:
				c.Timeout = d
			}
		}
	}
	if e, ok := keys["before"]; ok {
		if s, ok := r.text(e); ok {
			if s != "pass" {
				r.add(e.line, "before: want \"pass\" (a check that may already pass before the solution), got %q", s)
			}
			c.Before = s
		}
	}
	return c
}

// readQuiz fills the quiz fields of c.
func readQuiz(c *Check, keys map[string]entry, r *yamlReader) {
	for _, k := range []string{"timeout", "before"} {
		if e, ok := keys[k]; ok {
			r.add(e.line, "%s does not apply to a quiz", k)
		}
	}
	q, _ := r.text(keys["question"])
	c.Question = strings.TrimSpace(q)
	if c.Question == "" {
		r.add(keys["question"].line, "question is empty")
	}
	if c.Title == "" {
		c.Title = c.Question
	}
	if e, ok := keys["explain"]; ok {
		s, _ := r.text(e)
		c.Explain = strings.TrimSpace(s)
	}
	e, ok := keys["options"]
	if !ok || isNull(e.val) {
		r.add(keys["question"].line, "quiz has no options")
		return
	}
	if e.val.Kind != yaml.SequenceNode {
		r.add(e.line, "options: want a list of {text, correct}, got %s", describe(e.val))
		return
	}
	if len(e.val.Content) == 0 {
		r.add(e.line, "quiz has no options")
		return
	}
	correct := 0
	for i, item := range e.val.Content {
		item = resolve(item)
		line := e.line
		if item != nil && item.Line > 0 {
			line = item.Line
		}
		if item == nil || item.Kind != yaml.MappingNode {
			r.add(line, "option %d: want text: and optionally correct: true, got %s", i+1, describe(item))
			continue
		}
		optR := &yamlReader{p: r.p, base: r.base, prefix: r.prefix + "option " + strconv.Itoa(i+1) + ": "}
		fields := optR.entries(item, optionKeys, nil)
		var opt Option
		if te, has := fields["text"]; has {
			t, _ := optR.text(te)
			opt.Text = strings.TrimSpace(t)
		}
		if opt.Text == "" {
			optR.add(line, "text is required")
		}
		if ce, has := fields["correct"]; has {
			opt.Correct, _ = optR.boolean(ce)
		}
		if opt.Correct {
			correct++
		}
		c.Options = append(c.Options, opt)
	}
	switch {
	case len(e.val.Content) == 1:
		r.add(e.line, "quiz has only one option")
	case correct == 0:
		r.add(e.line, "quiz has no correct option: mark at least one with correct: true")
	}
	c.Multiple = correct > 1
}

// lookup returns the value of key in mapping n, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := resolve(n.Content[i]); k != nil && k.Kind == yaml.ScalarNode && k.Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}
