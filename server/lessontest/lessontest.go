// Package lessontest proves lessons solvable, the engine of `kubelab test`:
// for each lesson, in a fresh sandbox, it runs the setup, then for each step
// checks that its checks fail, types the step's solution into a real
// terminal (the PTY a learner types into), and checks that every check then
// passes within its timeout.
package lessontest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"kubelab/checker"
	"kubelab/lessons"
	"kubelab/sandbox"
	"kubelab/sandbox/checktarget"
)

// Runner runs lessons in sandboxes of one provider.
type Runner struct {
	Provider sandbox.Provider
	// SolutionTimeout bounds how long one step's solution may run in the
	// terminal; default 10 minutes.
	SolutionTimeout time.Duration
	// Progress, when set, receives a line per event as it happens.
	Progress io.Writer
	// Kind is the most the provider can provide; lessons needing more are
	// reported as not run. Zero means no limit.
	Kind sandbox.Kind
}

// Report is the outcome of one lesson.
type Report struct {
	Lesson  string
	Steps   []StepReport
	Skipped string // why the lesson was not run, if it was not
	Err     error  // a failure outside any step (sandbox, setup)
	Elapsed time.Duration
	// Earlier holds the failed attempts before this one, when the lesson
	// was retried in a fresh sandbox; they are reported, never hidden.
	Earlier []Report
}

// OK reports whether the lesson ran and every step behaved.
func (r Report) OK() bool {
	if r.Err != nil || r.Skipped != "" {
		return false
	}
	for _, s := range r.Steps {
		if len(s.Problems) > 0 {
			return false
		}
	}
	return true
}

// StepReport is the outcome of one step.
type StepReport struct {
	Num      int
	Title    string
	Checks   int
	Before   string // "fail" (as it must), or what went wrong
	After    string // "pass" (as it must), or what went wrong
	Elapsed  time.Duration
	Problems []string // each a sentence naming the check
}

// Run tests one lesson in a fresh sandbox that it deletes afterwards.
func (r *Runner) Run(ctx context.Context, l *lessons.Lesson) (rep Report) {
	start := time.Now()
	rep.Lesson = l.ID()
	defer func() { rep.Elapsed = time.Since(start) }()

	if l.Sandbox == lessons.SandboxNone {
		for _, st := range l.Steps {
			rep.Steps = append(rep.Steps, r.runStep(ctx, nil, nil, st))
		}
		return rep
	}
	need := sandbox.KindFor(string(l.Sandbox))
	if r.Kind != 0 && need > r.Kind {
		rep.Skipped = fmt.Sprintf("needs a %s sandbox; the %s provider gives at most %s", need, r.Provider.Name(), r.Kind)
		return rep
	}
	id := "kl-test-" + randomHex(4)
	r.logf("%s: creating a %s sandbox", l.ID(), need)
	sb, err := r.Provider.Create(ctx, id, sandbox.ForLesson("kubelab-test", l), func(p sandbox.Progress) {
		r.logf("%s: %3d%% %s", l.ID(), p.Percent, p.Message)
	})
	if err != nil {
		rep.Err = fmt.Errorf("create sandbox: %w", err)
		return rep
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := r.Provider.Delete(dctx, id); err != nil {
			r.logf("%s: delete sandbox %s: %v", l.ID(), id, err)
		}
	}()
	for _, b := range l.Setup {
		res, err := sb.Exec(ctx, b.Text)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("exit code %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
		}
		if err != nil {
			rep.Err = fmt.Errorf("setup block at %s:%d: %w", l.File, b.Line, err)
			return rep
		}
	}
	term, err := openTerminal(ctx, sb)
	if err != nil {
		rep.Err = err
		return rep
	}
	defer term.Close()
	for _, st := range l.Steps {
		sr := r.runStep(ctx, sb, term, st)
		rep.Steps = append(rep.Steps, sr)
		r.logf("%s: step %d %q: before %s, after %s (%.1fs)", l.ID(), st.Num, st.Title, sr.Before, sr.After, sr.Elapsed.Seconds())
		if ctx.Err() != nil {
			break
		}
	}
	return rep
}

// runStep checks before, types the solution, checks after. sb and term are
// nil for a lesson without a sandbox (quizzes only).
func (r *Runner) runStep(ctx context.Context, sb sandbox.Sandbox, term *terminal, st *lessons.Step) (sr StepReport) {
	start := time.Now()
	sr = StepReport{Num: st.Num, Title: st.Title, Checks: len(st.Checks), Before: "fail", After: "pass"}
	defer func() { sr.Elapsed = time.Since(start) }()

	var runnable []checker.Check
	var quizzes []*lessons.Check
	for _, c := range st.Checks {
		if c.Kind == lessons.KindQuiz {
			quizzes = append(quizzes, c)
			continue
		}
		spec, ok := c.Compiled.(*checker.Spec)
		if !ok {
			sr.Problems = append(sr.Problems, fmt.Sprintf("check %s was not compiled", c.ID))
			sr.Before, sr.After = "error", "error"
			return sr
		}
		runnable = append(runnable, checker.Check{ID: c.ID, Title: c.Title, Timeout: c.Timeout, Spec: spec})
	}
	// Quizzes: the right answer passes, no answer fails.
	for _, q := range quizzes {
		opts := make([]checker.QuizOption, len(q.Options))
		var right []int
		for i, o := range q.Options {
			opts[i] = checker.QuizOption{Text: o.Text, Correct: o.Correct}
			if o.Correct {
				right = append(right, i)
			}
		}
		if res := checker.GradeQuiz(q.ID, q.Question, opts, nil, q.Explain); res.Passed {
			sr.Problems = append(sr.Problems, fmt.Sprintf("quiz %s passes with no answer", q.ID))
		}
		if res := checker.GradeQuiz(q.ID, q.Question, opts, right, q.Explain); !res.Passed {
			sr.Problems = append(sr.Problems, fmt.Sprintf("quiz %s fails with its right answers: %s", q.ID, res.Message))
		}
	}
	if len(runnable) == 0 && len(quizzes) > 0 && len(st.Solutions) == 0 {
		sr.Before, sr.After = "quiz", "quiz"
		if len(sr.Problems) > 0 {
			sr.After = "FAILED"
		}
		return sr
	}
	if sb == nil {
		return sr
	}
	target := checktarget.For(sb)

	// Before: every check must fail, unless it says it may pass.
	before := checker.EvaluateAll(ctx, target, withoutTimeout(runnable))
	for i, res := range before {
		c := st.Checks[indexOf(st, runnable[i].ID)]
		if res.Passed && c.Before != "pass" {
			sr.Before = "PASSED"
			sr.Problems = append(sr.Problems, fmt.Sprintf("check %s passes before the solution ran: it proves nothing (or mark it `before: pass`)", c.ID))
		}
	}

	// The solution, typed into the terminal.
	for _, sol := range st.Solutions {
		if err := term.run(ctx, sol.Text, r.solutionTimeout()); err != nil {
			sr.After = "error"
			sr.Problems = append(sr.Problems, fmt.Sprintf("solution at line %d: %v", sol.Line, err))
			return sr
		}
	}

	// After: every check must pass within its timeout.
	after := checker.EvaluateAll(ctx, target, runnable)
	for _, res := range after {
		if !res.Passed {
			sr.After = "FAILED"
			sr.Problems = append(sr.Problems, fmt.Sprintf("check %s fails after the solution: %s", res.ID, res.Message))
		}
	}
	return sr
}

func (r *Runner) solutionTimeout() time.Duration {
	if r.SolutionTimeout > 0 {
		return r.SolutionTimeout
	}
	return 10 * time.Minute
}

func (r *Runner) logf(format string, args ...any) {
	if r.Progress != nil {
		fmt.Fprintf(r.Progress, format+"\n", args...)
	}
}

func withoutTimeout(cs []checker.Check) []checker.Check {
	out := make([]checker.Check, len(cs))
	for i, c := range cs {
		c.Timeout = 0
		out[i] = c
	}
	return out
}

func indexOf(st *lessons.Step, id string) int {
	for i, c := range st.Checks {
		if c.ID == id {
			return i
		}
	}
	return -1
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// terminal types into a sandbox's PTY and watches its output.
type terminal struct {
	t      sandbox.Terminal
	mu     sync.Mutex
	out    bytes.Buffer
	notify chan struct{}
	done   chan struct{}
	seq    int
}

func openTerminal(ctx context.Context, sb sandbox.Sandbox) (*terminal, error) {
	t, err := sb.OpenTerminal(ctx, 160, 48)
	if err != nil {
		return nil, fmt.Errorf("open terminal: %w", err)
	}
	term := &terminal{t: t, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go term.read()
	// Wait until the shell answers at all.
	if err := term.run(ctx, "true", time.Minute); err != nil {
		t.Close()
		return nil, fmt.Errorf("the terminal's shell does not answer: %w", err)
	}
	return term, nil
}

func (t *terminal) read() {
	defer close(t.done)
	buf := make([]byte, 32<<10)
	for {
		n, err := t.t.Read(buf)
		if n > 0 {
			t.mu.Lock()
			t.out.Write(buf[:n])
			if t.out.Len() > 1<<20 { // keep the tail only
				tail := append([]byte(nil), t.out.Bytes()[t.out.Len()-512<<10:]...)
				t.out.Reset()
				t.out.Write(tail)
			}
			t.mu.Unlock()
			select {
			case t.notify <- struct{}{}:
			default:
			}
		}
		if err != nil {
			return
		}
	}
}

// run types script into the shell followed by a line that prints a marker
// with the script's exit status, and waits for the marker. The marker is
// computed by the shell, so the echo of what was typed never matches it.
func (t *terminal) run(ctx context.Context, script string, timeout time.Duration) error {
	t.seq++
	n := t.seq
	marker := fmt.Sprintf("__kubelab_done_%d_", n)
	text := strings.TrimRight(script, "\n") + "\n" + fmt.Sprintf("echo __kubelab_done_$((%d+0))_$?__\n", n)
	if _, err := t.t.Write([]byte(text)); err != nil {
		return fmt.Errorf("type into the terminal: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		t.mu.Lock()
		out := t.out.String()
		t.mu.Unlock()
		if i := strings.LastIndex(out, marker); i >= 0 && strings.Contains(out[i:], "__") {
			rest := out[i+len(marker):]
			if j := strings.Index(rest, "__"); j >= 0 {
				return nil // the status is informational: a step may end with a failing command on purpose
			}
		}
		select {
		case <-t.notify:
		case <-t.done:
			return errors.New("the shell exited")
		case <-ctx.Done():
			return fmt.Errorf("no prompt after %s (the command may still be running): %w", timeout, ctx.Err())
		}
	}
}

// Close ends the shell.
func (t *terminal) Close() error { return t.t.Close() }
