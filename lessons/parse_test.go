package lessons

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// fakeCompiler stands in for the checker's compiler: it refuses a check
// whose YAML mentions "nonsense", saying on which line when the YAML also
// mentions "lined", and otherwise returns the kind.
type fakeCompiler struct{}

// compile is an Options.CompileCheck.
func (fakeCompiler) compile(kind string, raw []byte) (any, error) {
	i := bytes.Index(raw, []byte("nonsense"))
	switch {
	case i < 0:
		return "compiled " + kind, nil
	case bytes.Contains(raw, []byte("lined")):
		return nil, &linedError{line: bytes.Count(raw[:i], []byte("\n")) + 1, msg: "nonsense is not a resource"}
	default:
		return nil, errors.New(`resource "nonsense" is not <kind>/<name>`)
	}
}

// linedError is a compile error that knows its line in the block.
type linedError struct {
	line int
	msg  string
}

func (e *linedError) Error() string { return e.msg }
func (e *linedError) YAMLLine() int { return e.line }

// parseFile parses a lesson from testdata/parse.
func parseFile(t *testing.T, name string) (*Lesson, error) {
	t.Helper()
	file := "testdata/parse/" + name
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return ParseLesson(file, src, Options{CompileCheck: fakeCompiler{}.compile})
}

// problemStrings returns the String of every problem in err, which must be
// a *ErrorList (or nil).
func problemStrings(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var list *ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is a %T, not a *ErrorList: %v", err, err)
	}
	out := make([]string, len(*list))
	for i, p := range *list {
		out[i] = p.String()
	}
	return out
}

func TestParseLessonProblems(t *testing.T) {
	t.Parallel()
	const kinds = "command, kube, pods, rollout, http, docker, or question for a quiz"
	tests := []struct {
		file string
		want []string
	}{
		{"10-no-front-matter.md", []string{
			"testdata/parse/10-no-front-matter.md:1: missing front matter: a lesson starts with a --- line, then title: and sandbox:, then another --- line",
			`testdata/parse/10-no-front-matter.md:6: check Bad_ID: id "Bad_ID": use lowercase letters, digits and dashes`,
		}},
		{"11-unclosed.md", []string{
			"testdata/parse/11-unclosed.md:1: front matter is not closed: add a --- line after it",
		}},
		{"12-front-matter-yaml.md", []string{
			"testdata/parse/12-front-matter-yaml.md:3: front matter: bad YAML: did not find expected ',' or ']'",
		}},
		{"13-front-matter-keys.md", []string{
			"testdata/parse/13-front-matter-keys.md:1: front matter: title is required",
			`testdata/parse/13-front-matter-keys.md:2: front matter: unknown key "titel"; did you mean "title"?`,
			`testdata/parse/13-front-matter-keys.md:3: front matter: unknown sandbox "vm": want none, shell, docker or kubernetes`,
			`testdata/parse/13-front-matter-keys.md:4: front matter: minutes: want a whole number, got "ten"`,
			"testdata/parse/13-front-matter-keys.md:5: front matter: workers: want 0 or more, got -1",
			`testdata/parse/13-front-matter-keys.md:6: front matter: images: want a list such as [a, b], got "kubelab/hello:v1"`,
			"testdata/parse/13-front-matter-keys.md:7: front matter: tags: item 2: want text, got a mapping",
			`testdata/parse/13-front-matter-keys.md:8: front matter: requires: unknown requirement "gpu": want internet`,
			`testdata/parse/13-front-matter-keys.md:9: front matter: unknown key "difficulty"`,
			`testdata/parse/13-front-matter-keys.md:10: front matter: duplicate key "minutes" (first at line 4)`,
		}},
		{"14-front-matter-missing.md", []string{
			"testdata/parse/14-front-matter-missing.md:1: front matter: title is required",
			"testdata/parse/14-front-matter-missing.md:1: front matter: sandbox is required: none, shell, docker or kubernetes",
		}},
		{"15-shell-extras.md", []string{
			"testdata/parse/15-shell-extras.md:4: front matter: workers: only a lesson with sandbox kubernetes has a cluster to add workers to",
			"testdata/parse/15-shell-extras.md:5: front matter: images: a lesson with sandbox shell has no Docker engine to load images into",
			"testdata/parse/15-shell-extras.md:10: check pods-up: a pods check needs sandbox kubernetes or more; this lesson has sandbox shell",
			"testdata/parse/15-shell-extras.md:17: check engine: a docker check needs sandbox docker or more; this lesson has sandbox shell",
		}},
		{"20-checks.md", []string{
			"testdata/parse/20-checks.md:8: check: id is required",
			`testdata/parse/20-checks.md:15: check Web_Ready: id "Web_Ready": use lowercase letters, digits and dashes`,
			"testdata/parse/20-checks.md:28: check same: duplicate id (first at line 21)",
			`testdata/parse/20-checks.md:38: check kinded: unknown check kind "kubectl": want one of ` + kinds,
			"testdata/parse/20-checks.md:42: check two-kinds: several kinds (command, kube): a check block has exactly one",
			"testdata/parse/20-checks.md:51: check no-kind: no check kind: add one of " + kinds,
			"testdata/parse/20-checks.md:56: check no-title: title is required",
			`testdata/parse/20-checks.md:60: check no-title: bad timeout "5x": want a duration such as 30s or 2m`,
			`testdata/parse/20-checks.md:61: check no-title: before: want "pass" (a check that may already pass before the solution), got "fail"`,
			`testdata/parse/20-checks.md:62: check no-title: unknown key "hnit"; did you mean "hint"?`,
			"testdata/parse/20-checks.md:67: check: bad YAML: mapping values are not allowed in this context",
			"testdata/parse/20-checks.md:72: check: empty block: want id, title and one of " + kinds,
			"testdata/parse/20-checks.md:75: check: want a mapping with id, title and one of " + kinds + ", got a list",
			`testdata/parse/20-checks.md:87: check late: bad timeout "0s": want more than zero`,
			"testdata/parse/20-checks.md:88: check late: explain only applies to a quiz",
		}},
		{"21-quizzes.md", []string{
			"testdata/parse/21-quizzes.md:10: check no-options: quiz has no options",
			"testdata/parse/21-quizzes.md:16: check no-correct: quiz has no correct option: mark at least one with correct: true",
			`testdata/parse/21-quizzes.md:19: check no-correct: option 2: correct: want true or false, got "no"`,
			"testdata/parse/21-quizzes.md:25: check one-option: quiz has only one option",
			"testdata/parse/21-quizzes.md:28: check one-option: timeout does not apply to a quiz",
			"testdata/parse/21-quizzes.md:31: check not-a-quiz: a quiz block holds a question and options; put a command check in a check block",
			`testdata/parse/21-quizzes.md:42: check bad-option: option 1: want text: and optionally correct: true, got "just text"`,
			"testdata/parse/21-quizzes.md:43: check bad-option: option 2: text is required",
			`testdata/parse/21-quizzes.md:45: check bad-option: option 2: unknown key "weight"`,
		}},
		{"22-structure.md", []string{
			`testdata/parse/22-structure.md:8: runnable block before the first step: put it under a "## " heading`,
			`testdata/parse/22-structure.md:12: check early: checks belong to a step: put the block under a "## " heading`,
			`testdata/parse/22-structure.md:19: solution block before the first step: put it under the "## " heading of its step`,
			`testdata/parse/22-structure.md:23: hint block before the first step: put it under the "## " heading of its step`,
			"testdata/parse/22-structure.md:27: setup block in a lesson with sandbox none: there is no sandbox to set up",
			`testdata/parse/22-structure.md:31: step "Solved but unchecked" has a solution but no check to verify it`,
			"testdata/parse/22-structure.md:33: solution block in a lesson with sandbox none: there is no sandbox to run it in",
			"testdata/parse/22-structure.md:39: runnable block in a lesson with sandbox none: there is no terminal to run it in",
			"testdata/parse/22-structure.md:43: check cmd: a command check needs sandbox shell or more; this lesson has sandbox none",
			"testdata/parse/22-structure.md:50: step 3: the heading has no title",
		}},
		{"23-compile.md", []string{
			`testdata/parse/23-compile.md:15: check refused: resource "nonsense" is not <kind>/<name>`,
			"testdata/parse/23-compile.md:35: check lined: nonsense is not a resource",
		}},
		{"bad-name.md", []string{
			`testdata/parse/bad-name.md: lesson file name "bad-name.md" must be <nn>-<slug>.md, such as 01-welcome.md`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			l, err := parseFile(t, tt.file)
			if l != nil {
				t.Errorf("got a lesson along with the problems")
			}
			got := problemStrings(t, err)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

func TestParseLessonEverything(t *testing.T) {
	t.Parallel()
	l, err := parseFile(t, "01-everything.md")
	if err != nil {
		t.Fatal(err)
	}
	// Front matter and file name.
	if got, want := fmt.Sprint(l.Track, " ", l.Slug, " ", l.Num, " ", l.ID()), "parse everything 1 parse/everything"; got != want {
		t.Errorf("track slug num id = %q, want %q", got, want)
	}
	if l.Title != "Everything a lesson can hold" || l.Minutes != 12 || l.Sandbox != SandboxKubernetes || l.Workers != 2 ||
		l.Summary != "A lesson that uses every part of the format." {
		t.Errorf("front matter: %+v", l)
	}
	for name, pair := range map[string][2][]string{
		"images":   {l.Images, {"kubelab/hello:v1", "kubelab/python:v1"}},
		"tags":     {l.Tags, {"test", "golden"}},
		"requires": {l.Requires, {"internet"}},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("%s = %q, want %q", name, pair[0], pair[1])
		}
	}
	wantSetup := []Block{
		{Line: 25, Text: "kubectl create namespace lab\n"},
		{Line: 98, Text: "echo \"setup may appear anywhere\" > /tmp/marker\n"},
	}
	if !reflect.DeepEqual(l.Setup, wantSetup) {
		t.Errorf("setup = %+v, want %+v", l.Setup, wantSetup)
	}

	if len(l.Steps) != 2 {
		t.Fatalf("%d steps, want 2", len(l.Steps))
	}
	s1, s2 := l.Steps[0], l.Steps[1]
	if s1.Num != 1 || s1.Title != "Create the web Deployment" || s1.Line != 29 || s1.Anchor != "create-the-web-deployment" {
		t.Errorf("step 1 = %d %q line %d anchor %q", s1.Num, s1.Title, s1.Line, s1.Anchor)
	}
	if s2.Num != 2 || s2.Title != "Answer a quiz" || s2.Line != 85 {
		t.Errorf("step 2 = %d %q line %d", s2.Num, s2.Title, s2.Line)
	}
	wantRun := []Block{
		{Line: 33, Text: "kubectl create deployment web --image=kubelab/hello:v1 --replicas=3\n"},
		{Line: 69, Text: "echo \"<tag> & 'quotes'\"\n"},
	}
	if !reflect.DeepEqual(s1.Runnable, wantRun) {
		t.Errorf("runnable = %+v, want %+v", s1.Runnable, wantRun)
	}
	if want := []string{"Look at `kubectl create deployment --help`.\n"}; !reflect.DeepEqual(s1.Hints, want) {
		t.Errorf("hints = %q, want %q", s1.Hints, want)
	}
	wantSol := []Block{{Line: 60, Text: "kubectl create deployment web --image=kubelab/hello:v1 --replicas=3\nkubectl rollout status deployment/web\n"}}
	if !reflect.DeepEqual(s1.Solutions, wantSol) {
		t.Errorf("solutions = %+v, want %+v", s1.Solutions, wantSol)
	}

	type checkSummary struct {
		ID, Title, Kind, Hint, Before, Question, Explain string
		Line                                             int
		Timeout                                          time.Duration
		Options                                          []Option
		Multiple                                         bool
		Compiled                                         any
	}
	summarize := func(cs []*Check) []checkSummary {
		var out []checkSummary
		for _, c := range cs {
			out = append(out, checkSummary{c.ID, c.Title, c.Kind, c.Hint, c.Before, c.Question, c.Explain, c.Line, c.Timeout, c.Options, c.Multiple, c.Compiled})
		}
		return out
	}
	want1 := []checkSummary{
		{ID: "web-ready", Title: "Deployment web has 3 ready replicas", Kind: "kube", Hint: "kubectl create deployment takes --replicas",
			Line: 43, Timeout: time.Minute, Compiled: "compiled kube"},
		{ID: "store", Title: "Which component stores the cluster's state?", Kind: "quiz", Question: "Which component stores the cluster's state?",
			Explain: "etcd is the key-value store behind the API server.", Line: 75,
			Options: []Option{{Text: "etcd", Correct: true}, {Text: "kubelet"}}},
	}
	if got := summarize(s1.Checks); !reflect.DeepEqual(got, want1) {
		t.Errorf("step 1 checks:\n got %+v\nwant %+v", got, want1)
	}
	want2 := []checkSummary{
		{ID: "parts", Title: "Which of these run on every node?", Kind: "quiz", Question: "Which of these run on every node?", Line: 87,
			Options: []Option{{Text: "kubelet", Correct: true}, {Text: "kube-proxy", Correct: true}, {Text: "etcd"}}, Multiple: true},
		{ID: "marker", Title: "The marker file exists", Kind: "command", Before: "pass", Line: 102, Compiled: "compiled command"},
	}
	if got := summarize(s2.Checks); !reflect.DeepEqual(got, want2) {
		t.Errorf("step 2 checks:\n got %+v\nwant %+v", got, want2)
	}
	wantRaw := "id: marker\ntitle: The marker file exists\ncommand:\n  run: test -f \"$HOME/marker\"\n  stdout: \"^ok\"\nbefore: pass\n"
	if got := string(s2.Checks[1].Raw); got != wantRaw {
		t.Errorf("raw = %q, want %q", got, wantRaw)
	}
}

// TestParseLessonCRLF: a file saved with Windows line endings reads the
// same, with the same lines.
func TestParseLessonCRLF(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("testdata/parse/20-checks.md")
	if err != nil {
		t.Fatal(err)
	}
	crlf := append([]byte("\xef\xbb\xbf"), bytes.ReplaceAll(src, []byte("\n"), []byte("\r\n"))...)
	_, errLF := ParseLesson("20-checks.md", src, Options{})
	_, errCRLF := ParseLesson("20-checks.md", crlf, Options{})
	if errLF == nil || errCRLF == nil || errLF.Error() != errCRLF.Error() {
		t.Errorf("LF and CRLF differ:\n%v\n--\n%v", errLF, errCRLF)
	}
}

// TestRenderGolden compares the rendered intro and steps of the valid
// lessons with testdata/golden; go test ./lessons -update rewrites them.
func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"01-everything", "02-quiz-only", "03-welcome"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l, err := parseFile(t, name+".md")
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "<!-- intro -->\n%s", l.Intro)
			for _, st := range l.Steps {
				fmt.Fprintf(&b, "<!-- step %d: %s (#%s) -->\n%s", st.Num, st.Title, st.Anchor, st.HTML)
			}
			golden := filepath.Join("testdata", "golden", name+".html")
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./lessons -update to create it)", err)
			}
			if b.String() != string(want) {
				t.Errorf("rendered HTML differs from %s (go test ./lessons -update rewrites it):\n%s", golden, b.String())
			}
		})
	}
}

// TestRenderRunnable pins the exact markup the page's JavaScript and the
// browser tests rely on.
func TestRenderRunnable(t *testing.T) {
	t.Parallel()
	l, err := parseFile(t, "03-welcome.md")
	if err != nil {
		t.Fatal(err)
	}
	want := `<div class="runnable" data-step="1" data-block="0"><pre><code class="language-bash">echo &quot;hello from $(whoami)&quot; &gt; ~/hello.txt
</code></pre><button type="button" class="run" data-step="1" data-block="0">Run</button></div>
`
	if !strings.Contains(string(l.Steps[0].HTML), want) {
		t.Errorf("step 1 HTML lacks the runnable block:\n%s", l.Steps[0].HTML)
	}
}

// TestRenderHidesSecrets: solutions, setup, hints and quiz answers never
// reach the HTML, and neither does raw HTML.
func TestRenderHidesSecrets(t *testing.T) {
	t.Parallel()
	l, err := parseFile(t, "01-everything.md")
	if err != nil {
		t.Fatal(err)
	}
	all := string(l.Intro)
	for _, st := range l.Steps {
		all += string(st.HTML)
	}
	for _, secret := range []string{
		"rollout status",       // solution
		"create namespace lab", // setup
		"setup may appear",     // setup in a step
		"--help",               // hint
		"correct",              // quiz answers
		"etcd",                 // quiz option
		"HOME/marker",          // check body
		"<script", "onclick",   // raw HTML
		"<h2", // step headings are rendered by the page
	} {
		if strings.Contains(all, secret) {
			t.Errorf("rendered HTML contains %q", secret)
		}
	}
}

func TestProblemString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "docker/01-welcome.md", Line: 12, Msg: "check x: bad"}, "docker/01-welcome.md:12: check x: bad"},
		{Problem{File: "docker/track.yaml", Msg: "missing"}, "docker/track.yaml: missing"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestErrorListSortedAndWrapped(t *testing.T) {
	t.Parallel()
	err := errorList([]Problem{
		{File: "b.md", Line: 2, Msg: "b2"},
		{File: "a.md", Line: 10, Msg: "a10"},
		{File: "b.md", Line: 1, Msg: "b1"},
		{File: "a.md", Line: 9, Msg: "a9"},
		{File: "a.md", Line: 10, Msg: "a10 second"},
	})
	wrapped := fmt.Errorf("load lessons: %w", err)
	var list *ErrorList
	if !errors.As(wrapped, &list) {
		t.Fatalf("errors.As found no *ErrorList in %v", wrapped)
	}
	want := "a.md:9: a9\na.md:10: a10\na.md:10: a10 second\nb.md:1: b1\nb.md:2: b2"
	if got := list.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	if errorList(nil) != nil {
		t.Error("errorList(nil) is not nil")
	}
}

// FuzzParseLesson: any input gives a lesson or an error, never a panic,
// never both, and never raw HTML in what is rendered.
func FuzzParseLesson(f *testing.F) {
	for _, pattern := range []string{"testdata/parse/*.md", "content/*/*.md"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		l, err := ParseLesson("track/01-fuzz.md", src, Options{CompileCheck: fakeCompiler{}.compile})
		if (l == nil) == (err == nil) {
			t.Fatalf("lesson %v and error %v", l, err)
		}
		if err != nil {
			var list *ErrorList
			if !errors.As(err, &list) || len(*list) == 0 {
				t.Fatalf("error is not a non-empty *ErrorList: %v", err)
			}
			// Lines end at \n, \r\n or a lone \r, as in any editor.
			lines := len(bytes.Split(bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n")), []byte("\n")))
			lines += bytes.Count(src, []byte("\r")) - bytes.Count(src, []byte("\r\n"))
			for _, p := range *list {
				if p.File != "track/01-fuzz.md" || p.Line < 0 || p.Line > lines || p.Msg == "" {
					t.Fatalf("bad problem %+v (file has %d lines)", p, lines)
				}
			}
			return
		}
		html := strings.ToLower(string(l.Intro))
		for _, st := range l.Steps {
			html += strings.ToLower(string(st.HTML))
		}
		if strings.Contains(html, "<script") {
			t.Fatalf("raw HTML came through:\n%s", html)
		}
	})
}
