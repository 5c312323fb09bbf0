package lessontest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"kubelab/checker"
	"kubelab/lessons"
	"kubelab/sandbox"
	"kubelab/sandbox/checktarget"
)

// Replay rebuilds a learner's progress in a new sandbox (their old one was
// culled): it types the solutions of steps, in order, into a fresh
// terminal of sb, as `kubelab test` does, and waits for each step's
// checks to pass (within their timeouts) before the next step, since a
// step builds on the ones before. The lesson's setup must have run. A step
// that does not pass is reported and the replay goes on with the next.
// progress is called before each step with its index in steps.
func Replay(ctx context.Context, sb sandbox.Sandbox, steps []*lessons.Step, timeout time.Duration, progress func(i int, st *lessons.Step)) error {
	if len(steps) == 0 {
		return nil
	}
	term, err := openTerminal(ctx, sb)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer term.Close()
	target := checktarget.For(sb)
	var errs []error
	for i, st := range steps {
		if progress != nil {
			progress(i, st)
		}
		if err := replayStep(ctx, term, target, st, timeout); err != nil {
			errs = append(errs, fmt.Errorf("step %d (%s): %w", st.Num, st.Title, err))
		}
		if ctx.Err() != nil {
			return errors.Join(append(errs, ctx.Err())...)
		}
	}
	return errors.Join(errs...)
}

// replayStep types st's solutions and waits for its checks.
func replayStep(ctx context.Context, term *terminal, target checker.Target, st *lessons.Step, timeout time.Duration) error {
	for _, sol := range st.Solutions {
		if err := term.run(ctx, sol.Text, timeout); err != nil {
			return fmt.Errorf("solution at line %d: %w", sol.Line, err)
		}
	}
	var checks []checker.Check
	for _, c := range st.Checks {
		if spec, ok := c.Compiled.(*checker.Spec); ok {
			checks = append(checks, checker.Check{ID: c.ID, Title: c.Title, Timeout: c.Timeout, Spec: spec})
		}
	}
	for _, res := range checker.EvaluateAll(ctx, target, checks) {
		if !res.Passed {
			return fmt.Errorf("check %s: %s", res.ID, res.Message)
		}
	}
	return nil
}
