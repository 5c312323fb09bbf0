package checker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCommand(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 250)
	tests := []struct {
		name   string
		block  string
		stdout string
		stderr string
		code   int
		err    error
		passed bool
		msg    string
	}{
		{name: "exit 0 passes", block: "command: {run: 'true'}", passed: true, msg: "command succeeded"},
		{name: "stderr first line", block: "command: {run: cat marker}", stderr: "\ncat: marker: No such file or directory\nmore\n", code: 1,
			msg: "command exited with code 1: cat: marker: No such file or directory"},
		{name: "stdout when stderr is empty", block: "command: {run: ./check}", stdout: "  port 80 is closed  \n", code: 2,
			msg: "command exited with code 2: port 80 is closed"},
		{name: "no output", block: "command: {run: 'false'}", code: 1, msg: "command exited with code 1 and printed nothing"},
		{name: "long line is clipped", block: "command: {run: x}", stderr: long, code: 1,
			msg: "command exited with code 1: " + strings.Repeat("x", 199) + "…"},
		{name: "stdout matches", block: "command: {run: ./ok, stdout: '^ok'}", stdout: "ok: all good\n", passed: true,
			msg: "command succeeded and its output matched ^ok"},
		{name: "stdout does not match", block: "command: {run: ./ok, stdout: '^ok'}", stdout: "nope\nok\n",
			msg: `output did not match ^ok: got "nope"`},
		{name: "multi-line pattern", block: "command: {run: ./ok, stdout: '(?m)^ok$'}", stdout: "nope\nok\n", passed: true,
			msg: "command succeeded and its output matched (?m)^ok$"},
		{name: "stdout empty", block: "command: {run: ./ok, stdout: '^ok'}",
			msg: "output did not match ^ok: the command printed nothing"},
		{name: "a failing exit wins over the output", block: "command: {run: ./ok, stdout: '^ok'}", stdout: "ok\n", code: 3,
			msg: "command exited with code 3: ok"},
		{name: "no terminal", block: "command: {run: ls}", err: fmt.Errorf("exec: %w", ErrUnavailable),
			msg: "this check needs a terminal, and this sandbox has none"},
		{name: "sandbox error", block: "command: {run: ls}", err: errors.New("docker exec: connection reset"),
			msg: "could not run the command in your sandbox; try again in a moment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var script string
			target := &fakeTarget{run: func(n int, s string) (string, string, int, error) {
				script = s
				return tt.stdout, tt.stderr, tt.code, tt.err
			}}
			spec := mustCompile(t, "command", tt.block)
			got := testEvaluator(nil).evaluate(t.Context(), target, Check{ID: "c", Spec: spec})
			wantResult(t, got, tt.passed, tt.msg)
			if script != spec.Command.Run {
				t.Errorf("ran %q, want %q", script, spec.Command.Run)
			}
			if (tt.err != nil) != (got.Err != nil) {
				t.Errorf("Result.Err = %v, want an error: %v", got.Err, tt.err != nil)
			}
		})
	}
}

// A run that outlives its time is cut off, with a clear message.
func TestCommandRunTimeout(t *testing.T) {
	t.Parallel()
	e := testEvaluator(nil)
	e.attemptMax = 50 * time.Millisecond
	got := e.evaluate(t.Context(), &blockingTarget{}, Check{ID: "slow", Spec: mustCompile(t, "command", "command: {run: sleep 60}")})
	wantResult(t, got, false, "command did not finish within 50ms")
}

// blockingTarget runs commands that never finish before their context ends.
type blockingTarget struct{ fakeTarget }

func (*blockingTarget) Run(ctx context.Context, script string) ([]byte, []byte, int, error) {
	<-ctx.Done()
	return nil, nil, -1, fmt.Errorf("exec %q: %w", script, ctx.Err())
}
