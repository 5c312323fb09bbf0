package lessons

import (
	"bytes"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// frontMatterKeys are the keys a lesson's front matter may have.
var frontMatterKeys = []string{"title", "minutes", "sandbox", "images", "workers", "summary", "tags", "requires", "drill", "time_limit", "hint_cost", "addons", "resources"}

// Requirements a lesson may list under requires.
var knownRequirements = []string{"internet"}

// splitFrontMatter cuts src into the YAML between the leading "---" lines
// and the Markdown body after them. fmLine is the file line of the front
// matter's first line and bodyLine that of the body's. ok is false when
// there is no usable front matter (a problem has been reported); body is
// then whatever can still be checked (the whole file when the opening
// line is missing, nothing when the front matter is never closed).
func splitFrontMatter(src []byte, p *problems) (fm []byte, fmLine int, body []byte, bodyLine int, ok bool) {
	lines := bytes.SplitAfter(src, []byte("\n"))
	if !isFence(lines[0]) {
		p.add(1, "missing front matter: a lesson starts with a --- line, then title: and sandbox:, then another --- line")
		return nil, 0, src, 1, false
	}
	off := len(lines[0])
	for i := 1; i < len(lines); i++ {
		if isFence(lines[i]) {
			// lines[i] is file line i+1.
			return src[len(lines[0]):off], 2, src[off+len(lines[i]):], i + 2, true
		}
		off += len(lines[i])
	}
	p.add(1, "front matter is not closed: add a --- line after it")
	return nil, 0, nil, 0, false
}

// isFence reports whether line is a front matter delimiter.
func isFence(line []byte) bool {
	return string(bytes.TrimRight(line, " \t\r\n")) == "---"
}

// decodeFrontMatter fills l from the front matter YAML, which starts on
// file line fmLine.
func decodeFrontMatter(fm []byte, fmLine int, l *Lesson, p *problems) {
	r := &yamlReader{p: p, base: fmLine - 1, prefix: "front matter: "}
	root, errLine, errMsg := parseYAML(fm)
	if errMsg != "" {
		r.add(errLine, "bad YAML: %s", errMsg)
		return
	}
	if root == nil {
		root = &yaml.Node{Kind: yaml.MappingNode}
	}
	if root.Kind != yaml.MappingNode {
		r.add(root.Line, "want keys such as title: and sandbox:, got %s", describe(root))
		return
	}
	// The line of the opening ---, for "x is required" problems.
	top := fmLine - 1
	keys := r.entries(root, frontMatterKeys, nil)
	titleOK := true
	if e, ok := keys["title"]; ok {
		l.Title, titleOK = r.text(e)
		l.Title = strings.TrimSpace(l.Title)
	}
	if l.Title == "" && titleOK {
		line := top
		if e, ok := keys["title"]; ok {
			line = r.base + e.line
		}
		p.add(line, "front matter: title is required")
	}
	if e, ok := keys["sandbox"]; ok {
		if s, ok := r.text(e); ok {
			switch kind := SandboxKind(strings.TrimSpace(s)); kind {
			case SandboxNone, SandboxShell, SandboxDocker, SandboxKubernetes:
				l.Sandbox = kind
			case "":
				r.add(e.line, "sandbox is required: none, shell, docker or kubernetes")
			default:
				r.add(e.line, "unknown sandbox %q: want none, shell, docker or kubernetes", s)
			}
		}
	} else {
		p.add(top, "front matter: sandbox is required: none, shell, docker or kubernetes")
	}
	if e, ok := keys["minutes"]; ok {
		if v, ok := r.integer(e); ok {
			if v < 0 {
				r.add(e.line, "minutes: want 0 or more, got %d", v)
			}
			l.Minutes = v
		}
	}
	if e, ok := keys["workers"]; ok {
		if v, ok := r.integer(e); ok {
			switch {
			case v < 0:
				r.add(e.line, "workers: want 0 or more, got %d", v)
			case v > 0 && l.Sandbox != "" && l.Sandbox != SandboxKubernetes:
				r.add(e.line, "workers: only a lesson with sandbox kubernetes has a cluster to add workers to")
			}
			l.Workers = v
		}
	}
	if e, ok := keys["images"]; ok {
		l.Images, _ = r.list(e)
		for _, img := range l.Images {
			if strings.ContainsAny(img, " \t") {
				r.add(e.line, "images: %q is not an image reference", img)
			}
		}
		if len(l.Images) > 0 && (l.Sandbox == SandboxNone || l.Sandbox == SandboxShell) {
			r.add(e.line, "images: a lesson with sandbox %s has no Docker engine to load images into", l.Sandbox)
		}
	}
	if e, ok := keys["summary"]; ok {
		s, _ := r.text(e)
		l.Summary = strings.TrimSpace(s)
	}
	if e, ok := keys["tags"]; ok {
		l.Tags, _ = r.list(e)
	}
	decodeDrill(keys, l, r)
	decodeAddons(keys, l, r)
	decodeResources(keys, l, r)
	if e, ok := keys["requires"]; ok {
		l.Requires, _ = r.list(e)
		for _, req := range l.Requires {
			if !contains(knownRequirements, req) {
				r.add(e.line, "requires: unknown requirement %q: want %s", req, strings.Join(knownRequirements, ", "))
			}
		}
	}
}

// decodeDrill reads the drill keys: drill: true needs a time_limit; the
// other two keys only make sense on a drill.
func decodeDrill(keys map[string]entry, l *Lesson, r *yamlReader) {
	l.HintCost = 1
	if e, ok := keys["drill"]; ok {
		l.Drill, _ = r.boolean(e)
	}
	if e, ok := keys["time_limit"]; ok {
		if !l.Drill {
			r.add(e.line, "time_limit only applies to a drill (drill: true)")
		}
		if s, ok := r.text(e); ok {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			switch {
			case err != nil:
				r.add(e.line, "bad time_limit %q: want a duration such as 10m", s)
			case d <= 0:
				r.add(e.line, "bad time_limit %q: want more than zero", s)
			default:
				l.TimeLimit = d
			}
		}
	} else if e, ok := keys["drill"]; ok && l.Drill {
		r.add(e.line, "a drill needs a time_limit, such as time_limit: 10m")
	}
	if e, ok := keys["hint_cost"]; ok {
		if !l.Drill {
			r.add(e.line, "hint_cost only applies to a drill (drill: true)")
		}
		if v, ok := r.integer(e); ok {
			if v < 0 {
				r.add(e.line, "hint_cost: want 0 or more, got %d", v)
			}
			l.HintCost = v
		}
	}
}
