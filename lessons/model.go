// Package lessons holds the lesson model, the Markdown parser that builds it
// from lesson files, and the validation that reports every problem as
// file:line: message. It imports nothing else of kubelab.
package lessons

import (
	"html/template"
	"time"
)

// SandboxKind says what a lesson needs to run its exercises.
type SandboxKind string

// The sandbox kinds a lesson may ask for, from least to most.
const (
	SandboxNone       SandboxKind = "none"       // reading and quizzes, no terminal
	SandboxShell      SandboxKind = "shell"      // a terminal with the usual tools
	SandboxDocker     SandboxKind = "docker"     // plus the learner's Docker engine
	SandboxKubernetes SandboxKind = "kubernetes" // plus the learner's cluster
)

// Catalog is every track that was loaded, in display order.
type Catalog struct {
	Tracks []*Track
}

// Track is a folder of lessons with a track.yaml.
type Track struct {
	ID          string // folder name, used in URLs
	Title       string
	Description string
	Order       int
	Lessons     []*Lesson // ordered by their nn- prefix
}

// Lesson is one Markdown file with YAML front matter.
type Lesson struct {
	Track    string      // track ID
	Slug     string      // file name without the nn- prefix and .md
	Num      int         // the nn prefix
	File     string      // path the lesson was read from, for messages
	Title    string      // front matter: title
	Minutes  int         // front matter: minutes
	Sandbox  SandboxKind // front matter: sandbox
	Images   []string    // front matter: images to preload
	Workers  int         // front matter: workers (extra kind nodes), default 0
	Summary  string      // front matter: summary
	Tags     []string    // front matter: tags
	Requires []string    // front matter: requires (e.g. "internet")
	// Addons are installed into the cluster before the lesson starts
	// (front matter addons: [kubeflow-training]); Resources is what the
	// lesson needs of its cluster in all (front matter resources:
	// {memory: 3Gi, cpus: 2}).
	Addons    []string
	Resources Resources
	// Drill marks a timed, scored lesson (front matter drill: true) with
	// its time limit (time_limit: 10m) and what each hint shown costs in
	// points (hint_cost, default 1).
	Drill     bool
	TimeLimit time.Duration
	HintCost  int
	Intro     template.HTML
	Steps     []*Step
	Setup     []Block // hidden; run in the sandbox when the lesson starts
}

// ID is "<track>/<slug>".
func (l *Lesson) ID() string { return l.Track + "/" + l.Slug }

// Step starts at a "## " heading. Its checks must all pass for it to count.
type Step struct {
	Num       int // counts from 1
	Title     string
	Anchor    string // the heading's id, for links to the step (the heading is not in HTML)
	Line      int    // line of the heading in the lesson file
	HTML      template.HTML
	Runnable  []Block  // "bash run" blocks, in order; HTML refers to them by index
	Checks    []*Check // check and quiz blocks
	Hints     []string // hint blocks (Markdown source, revealed on request)
	Solutions []Block  // hidden; run by `kubelab test`
}

// Block is the text of a fenced block and where it starts.
type Block struct {
	Line int
	Text string
}

// Check is one check or quiz block. The fields every kind shares are parsed
// here; the kind-specific body is kept as Raw YAML and compiled by whoever
// evaluates it (the checker package), through Options.CompileCheck.
type Check struct {
	ID      string
	Title   string
	Kind    string // command, quiz, kube, pods, rollout, http, docker
	Line    int    // line of the opening fence
	Hint    string
	Timeout time.Duration
	Before  string // "" or "pass": a check allowed to pass before the solution
	Points  int    // what passing it scores in a drill; default 1
	Raw     []byte // the block's YAML source
	// Quiz only.
	Question string
	Options  []Option
	Multiple bool // more than one correct option
	Explain  string
	// Compiled is what Options.CompileCheck returned for this check.
	Compiled any
}

// Option is one answer of a quiz. Correct is never sent to the browser.
type Option struct {
	Text    string
	Correct bool
}
