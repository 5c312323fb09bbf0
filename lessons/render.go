package lessons

import (
	"bytes"
	"fmt"
	"html/template"
	"strconv"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	gmrenderer "github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/util"
)

// renderer turns lesson Markdown into HTML. It wraps one configured
// goldmark.Markdown, built once and reused for every lesson of a load:
// GitHub Flavored Markdown, heading ids, raw HTML left out, and our own
// node renderers for runnable blocks and check placeholders.
type renderer struct {
	md goldmark.Markdown
}

// newRenderer builds the goldmark configuration lessons are rendered with.
func newRenderer() *renderer {
	return &renderer{md: goldmark.New(
		goldmark.WithExtensions(extension.GFM),
		goldmark.WithParserOptions(parser.WithAutoHeadingID()),
		goldmark.WithRendererOptions(
			gmrenderer.WithNodeRenderers(util.Prioritized(blockRenderer{}, 100)),
		),
	)}
}

// render renders nodes, in order, as one document over source. The nodes
// are moved out of their old parent.
func (r *renderer) render(source []byte, nodes []ast.Node) (template.HTML, error) {
	doc := ast.NewDocument()
	for _, n := range nodes {
		doc.AppendChild(doc, n)
	}
	var buf bytes.Buffer
	if err := r.md.Renderer().Render(&buf, source, doc); err != nil {
		return "", fmt.Errorf("render markdown: %w", err)
	}
	return template.HTML(buf.String()), nil // goldmark escapes; raw HTML is off
}

// Node kinds of our own blocks. ast.NewNodeKind registers a name in
// goldmark's table once, at package initialisation; the values never
// change afterwards.
var (
	kindRunnable  = ast.NewNodeKind("KubelabRunnable")
	kindCheckSlot = ast.NewNodeKind("KubelabCheckSlot")
)

// runnableNode replaces a "bash run" fenced block: the code as usual plus
// a Run button that types it into the learner's terminal.
type runnableNode struct {
	ast.BaseBlock
	lang  string
	text  string
	step  int // Step.Num
	block int // index in Step.Runnable
}

// Kind implements ast.Node.
func (n *runnableNode) Kind() ast.NodeKind { return kindRunnable }

// IsRaw implements ast.Node: the block has no inline children.
func (n *runnableNode) IsRaw() bool { return true }

// Dump implements ast.Node.
func (n *runnableNode) Dump(source []byte, level int) {
	ast.DumpHelper(n, source, level, map[string]string{
		"Step": strconv.Itoa(n.step), "Block": strconv.Itoa(n.block),
	}, nil)
}

// checkSlotNode marks where a check or quiz block stood, so the page can
// show the check there. It carries the id only: never a quiz's answers.
type checkSlotNode struct {
	ast.BaseBlock
	step int
	id   string
}

// Kind implements ast.Node.
func (n *checkSlotNode) Kind() ast.NodeKind { return kindCheckSlot }

// IsRaw implements ast.Node.
func (n *checkSlotNode) IsRaw() bool { return true }

// Dump implements ast.Node.
func (n *checkSlotNode) Dump(source []byte, level int) {
	ast.DumpHelper(n, source, level, map[string]string{"Step": strconv.Itoa(n.step), "ID": n.id}, nil)
}

// blockRenderer renders our node kinds.
type blockRenderer struct{}

// RegisterFuncs implements gmrenderer.NodeRenderer.
func (blockRenderer) RegisterFuncs(reg gmrenderer.NodeRendererFuncRegisterer) {
	reg.Register(kindRunnable, renderRunnable)
	reg.Register(kindCheckSlot, renderCheckSlot)
}

// renderRunnable writes
//
//	<div class="runnable" data-step="S" data-block="I"><pre><code class="language-bash">…</code></pre><button type="button" class="run" data-step="S" data-block="I">Run</button></div>
func renderRunnable(w util.BufWriter, _ []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	n := node.(*runnableNode)
	data := fmt.Sprintf(`data-step="%d" data-block="%d"`, n.step, n.block)
	_, _ = w.WriteString(`<div class="runnable" ` + data + `><pre><code class="language-`)
	html.DefaultWriter.RawWrite(w, []byte(n.lang))
	_, _ = w.WriteString(`">`)
	html.DefaultWriter.RawWrite(w, []byte(n.text))
	_, _ = w.WriteString(`</code></pre><button type="button" class="run" ` + data + `>Run</button></div>` + "\n")
	return ast.WalkSkipChildren, nil
}

// renderCheckSlot writes <div class="check" data-step="S" data-check="ID"></div>.
func renderCheckSlot(w util.BufWriter, _ []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	n := node.(*checkSlotNode)
	_, _ = fmt.Fprintf(w, `<div class="check" data-step="%d" data-check="%s"></div>`+"\n", n.step, template.HTMLEscapeString(n.id))
	return ast.WalkSkipChildren, nil
}
