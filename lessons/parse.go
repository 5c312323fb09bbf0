package lessons

import (
	"bytes"
	"errors"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"
)

// Options configure parsing and loading.
type Options struct {
	// CompileCheck, when set, is called for every check that is not a quiz,
	// with its kind and the block's YAML source. Its error is reported as
	// "check <id>: <err>" at the block's opening line or, when the error has
	// a method YAMLLine() int giving a line of raw (from 1), at that line
	// of the file. Its result is kept in Check.Compiled. The checker
	// package provides it; lessons knows nothing of the kinds' bodies.
	CompileCheck func(kind string, raw []byte) (any, error)
	// Prefix is put before the file paths in problems (a directory, or
	// "lessons/content/"), so they can be clicked. Load uses it; LoadAll
	// puts it before each Source's Name.
	Prefix string
}

// yamlLiner is an error from Options.CompileCheck that knows the line of
// the check block it is about, counting from 1 at the block's first line.
type yamlLiner interface {
	YAMLLine() int
}

// lessonFileName is <nn>-<slug>.md.
var lessonFileName = regexp.MustCompile(`^([0-9]{1,4})-([a-z0-9]+(?:-[a-z0-9]+)*)\.md$`)

// shells are the info-string languages that may be marked runnable.
var shells = []string{"bash", "sh", "shell"}

// ParseLesson parses and validates one lesson file, <nn>-<slug>.md. file
// is the path shown in problems; Num, Slug and Track come from its name
// and folder. Every problem found is returned as a *ErrorList; the lesson
// is returned only when there are none.
//
// ParseLesson builds its own Markdown renderer; Load and LoadAll build one
// for all the lessons they read.
func ParseLesson(file string, src []byte, opts Options) (*Lesson, error) {
	l, ps := newRenderer().parseLesson(file, src, opts)
	if err := errorList(ps); err != nil {
		return nil, err
	}
	return l, nil
}

// parseLesson parses one lesson and returns it with every problem found.
func (r *renderer) parseLesson(file string, src []byte, opts Options) (*Lesson, []Problem) {
	p := &problems{file: file}
	l := &Lesson{File: file}
	if dir := path.Base(path.Dir(file)); dir != "." && dir != "/" {
		l.Track = dir
	}
	base := path.Base(file)
	if m := lessonFileName.FindStringSubmatch(base); m != nil {
		l.Num, _ = strconv.Atoi(m[1]) // at most 4 digits: cannot fail
		l.Slug = m[2]
	} else {
		p.add(0, "lesson file name %q must be <nn>-<slug>.md, such as 01-welcome.md", base)
	}

	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	// Markdown and YAML both end lines at \r\n, \n or a lone \r; make
	// them all \n so that every line number counts the same lines.
	src = bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))
	src = bytes.ReplaceAll(src, []byte("\r"), []byte("\n"))
	fm, fmLine, body, bodyLine, ok := splitFrontMatter(src, p)
	if ok {
		decodeFrontMatter(fm, fmLine, l, p)
	}
	if body != nil {
		r.parseBody(l, body, bodyLine, opts, p)
	}
	return l, p.list
}

// section is the intro or one step: the top-level nodes after a "## "
// heading, up to the next one.
type section struct {
	nodes []ast.Node
	step  *Step // nil for the intro
}

// parseBody parses the Markdown body, which starts on file line bodyLine,
// into l.Intro and l.Steps, takes out the special fenced blocks and
// validates what they hold.
func (r *renderer) parseBody(l *Lesson, body []byte, bodyLine int, opts Options, p *problems) {
	doc := r.md.Parser().Parse(text.NewReader(body))
	lines := newLineIndex(body, bodyLine)

	// Split the document at its top-level "## " headings.
	sections := []*section{{}}
	for n := doc.FirstChild(); n != nil; n = n.NextSibling() {
		if h, ok := n.(*ast.Heading); ok && h.Level == 2 {
			st := &Step{Num: len(sections), Title: plainText(h, body), Line: lines.nodeLine(h)}
			if id, ok := h.AttributeString("id"); ok {
				if b, ok := id.([]byte); ok {
					st.Anchor = string(b)
				}
			}
			if st.Title == "" {
				p.add(st.Line, "step %d: the heading has no title", st.Num)
			}
			sections = append(sections, &section{step: st})
			l.Steps = append(l.Steps, st)
			continue
		}
		last := sections[len(sections)-1]
		last.nodes = append(last.nodes, n)
	}

	seen := make(map[string]int) // check id -> line
	for _, sec := range sections {
		for _, fcb := range fencedBlocks(sec.nodes) {
			special(l, sec, fcb, body, lines, seen, p)
		}
	}
	validate(l, opts, p)

	var err error
	if l.Intro, err = r.render(body, sections[0].nodes); err != nil {
		p.add(bodyLine, "%v", err)
	}
	for _, sec := range sections[1:] {
		if sec.step.HTML, err = r.render(body, sec.nodes); err != nil {
			p.add(sec.step.Line, "%v", err)
		}
	}
}

// fencedBlocks lists the fenced code blocks in and under nodes, in
// document order.
func fencedBlocks(nodes []ast.Node) []*ast.FencedCodeBlock {
	var out []*ast.FencedCodeBlock
	for _, n := range nodes {
		_ = ast.Walk(n, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
			if fcb, ok := n.(*ast.FencedCodeBlock); ok && entering {
				out = append(out, fcb)
				return ast.WalkSkipChildren, nil
			}
			return ast.WalkContinue, nil
		})
	}
	return out
}

// special handles one fenced block of a section: a runnable block is
// swapped for a runnableNode, a check or quiz for a checkSlotNode, and
// solution, setup and hint blocks are taken out of the HTML. Other blocks
// stay as they are.
func special(l *Lesson, sec *section, fcb *ast.FencedCodeBlock, body []byte, lines lineIndex, seen map[string]int, p *problems) {
	if fcb.Info == nil {
		return
	}
	words := strings.Fields(string(fcb.Info.Segment.Value(body)))
	if len(words) == 0 {
		return
	}
	line := lines.nodeLine(fcb)
	block := Block{Line: line, Text: blockText(fcb, body)}
	st := sec.step
	switch kind := words[0]; {
	case contains(shells, kind) && contains(words[1:], "run"):
		if st == nil {
			p.add(line, "runnable block before the first step: put it under a \"## \" heading")
			replace(sec, fcb, nil)
			return
		}
		if l.Sandbox == SandboxNone {
			p.add(line, "runnable block in a lesson with sandbox none: there is no terminal to run it in")
		}
		replace(sec, fcb, &runnableNode{lang: kind, text: block.Text, step: st.Num, block: len(st.Runnable)})
		st.Runnable = append(st.Runnable, block)
	case kind == "check" || kind == KindQuiz:
		c := parseCheck([]byte(block.Text), line, kind == KindQuiz, p)
		if c == nil {
			replace(sec, fcb, nil)
			return
		}
		if c.ID != "" {
			if first, dup := seen[c.ID]; dup {
				p.add(line, "check %s: duplicate id (first at line %d)", c.ID, first)
			} else {
				seen[c.ID] = line
			}
		}
		if st == nil {
			p.add(line, "%s: checks belong to a step: put the block under a \"## \" heading", checkLabel(c.ID))
			replace(sec, fcb, nil)
			return
		}
		replace(sec, fcb, &checkSlotNode{step: st.Num, id: c.ID})
		st.Checks = append(st.Checks, c)
	case kind == "solution":
		replace(sec, fcb, nil)
		if st == nil {
			p.add(line, "solution block before the first step: put it under the \"## \" heading of its step")
			return
		}
		st.Solutions = append(st.Solutions, block)
	case kind == "hint":
		replace(sec, fcb, nil)
		if st == nil {
			p.add(line, "hint block before the first step: put it under the \"## \" heading of its step")
			return
		}
		st.Hints = append(st.Hints, block.Text)
	case kind == "setup":
		replace(sec, fcb, nil)
		l.Setup = append(l.Setup, block)
	}
}

// validate checks what can only be judged once the whole lesson is read.
func validate(l *Lesson, opts Options, p *problems) {
	if l.Sandbox == SandboxNone {
		for _, b := range l.Setup {
			p.add(b.Line, "setup block in a lesson with sandbox none: there is no sandbox to set up")
		}
	}
	for _, st := range l.Steps {
		if len(st.Solutions) > 0 && len(st.Checks) == 0 {
			p.add(st.Line, "step %q has a solution but no check to verify it", st.Title)
		}
		if l.Sandbox == SandboxNone {
			for _, b := range st.Solutions {
				p.add(b.Line, "solution block in a lesson with sandbox none: there is no sandbox to run it in")
			}
		}
		for _, c := range st.Checks {
			need, known := minSandbox[c.Kind]
			if !known {
				continue
			}
			if l.Sandbox != "" && sandboxRank[l.Sandbox] < sandboxRank[need] {
				p.add(c.Line, "%s: a %s check needs sandbox %s or more; this lesson has sandbox %s", checkLabel(c.ID), c.Kind, need, l.Sandbox)
			}
			if c.Kind == KindQuiz || opts.CompileCheck == nil {
				continue
			}
			compiled, err := opts.CompileCheck(c.Kind, c.Raw)
			if err != nil {
				line := c.Line
				var at yamlLiner
				if errors.As(err, &at) && at.YAMLLine() > 0 {
					line += at.YAMLLine()
				}
				p.add(line, "%s: %v", checkLabel(c.ID), err)
				continue
			}
			c.Compiled = compiled
		}
	}
}

// replace puts n where fcb stood (or just removes fcb when n is nil),
// keeping the section's list of top-level nodes right.
func replace(sec *section, fcb *ast.FencedCodeBlock, n ast.Node) {
	parent := fcb.Parent()
	if parent == nil {
		return
	}
	for i, top := range sec.nodes {
		if top != fcb {
			continue
		}
		if n == nil {
			sec.nodes = append(sec.nodes[:i:i], sec.nodes[i+1:]...)
		} else {
			sec.nodes[i] = n
		}
	}
	if n == nil {
		parent.RemoveChild(parent, fcb)
	} else {
		parent.ReplaceChild(parent, fcb, n)
	}
}

// blockText is the content of a fenced block, its lines joined.
func blockText(fcb *ast.FencedCodeBlock, source []byte) string {
	var b strings.Builder
	for i := 0; i < fcb.Lines().Len(); i++ {
		seg := fcb.Lines().At(i)
		b.Write(seg.Value(source))
	}
	return b.String()
}

// plainText is the text of an inline container such as a heading, without
// markup.
func plainText(n ast.Node, source []byte) string {
	var b strings.Builder
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch t := c.(type) {
		case *ast.Text:
			b.Write(t.Segment.Value(source))
			if t.SoftLineBreak() || t.HardLineBreak() {
				b.WriteByte(' ')
			}
		case *ast.String:
			b.Write(t.Value)
		case *ast.AutoLink:
			b.Write(t.Label(source))
		case *ast.RawHTML:
			return ast.WalkSkipChildren, nil
		}
		return ast.WalkContinue, nil
	})
	return strings.TrimSpace(b.String())
}

// lineIndex maps byte offsets of the body to file lines.
type lineIndex struct {
	first    int   // file line of the body's first byte
	newlines []int // offsets of '\n' in the body
}

// newLineIndex indexes body, whose first line is file line first.
func newLineIndex(body []byte, first int) lineIndex {
	li := lineIndex{first: first}
	for i, c := range body {
		if c == '\n' {
			li.newlines = append(li.newlines, i)
		}
	}
	return li
}

// line is the file line of byte offset off.
func (li lineIndex) line(off int) int {
	return li.first + sort.SearchInts(li.newlines, off)
}

// nodeLine is the file line where block node n starts.
func (li lineIndex) nodeLine(n ast.Node) int {
	if pos := n.Pos(); pos >= 0 {
		return li.line(pos)
	}
	if n.Lines().Len() > 0 {
		return li.line(n.Lines().At(0).Start)
	}
	return li.first
}

// checkLabel names a check in messages: "check web", or "check" when it
// has no id.
func checkLabel(id string) string {
	if id == "" {
		return "check"
	}
	return "check " + id
}
