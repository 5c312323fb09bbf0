package checker

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// CommandSpec runs a script in the sandbox: exit 0 (and, if given, standard
// output matching Stdout) passes. It is the escape hatch for what the other
// kinds cannot say.
type CommandSpec struct {
	Run    string         // bash script, run with bash -c
	Stdout *regexp.Regexp // optional; matched against the whole standard output
}

func compileCommand(n *yaml.Node) (*CommandSpec, error) {
	f, err := mapping(n, "command", "run", "stdout")
	if err != nil {
		return nil, err
	}
	run, err := f.required("run")
	if err != nil {
		return nil, err
	}
	re, err := f.regexp("stdout")
	if err != nil {
		return nil, err
	}
	return &CommandSpec{Run: run, Stdout: re}, nil
}

// maxLine is how much of one line of output a message quotes.
const maxLine = 200

// firstLine is the first non-blank line of b, trimmed to maxLine characters.
func firstLine(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return clip(line, maxLine)
		}
	}
	return ""
}

// lastLine is the last non-blank line of s, trimmed to maxLine characters.
func lastLine(s string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if line := strings.TrimSpace(lines[i]); line != "" {
			return clip(line, maxLine)
		}
	}
	return ""
}

// clip shortens s to at most n runes, marking the cut with "…".
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// command runs the script once. Without a check timeout a run may take 10 s;
// with one, it may use what is left of it.
func (s *session) command(ctx context.Context, c *CommandSpec) outcome {
	limit := s.e.attemptMax
	rctx, cancel := context.WithTimeout(ctx, limit)
	if s.timeout > 0 {
		cancel()
		rctx, cancel = ctx, func() {}
		limit = s.timeout
	}
	defer cancel()
	stdout, stderr, code, err := s.t.Run(rctx, c.Run)
	if err != nil {
		if rctx.Err() != nil {
			return outcome{msg: fmt.Sprintf("command did not finish within %s", limit.Round(time.Millisecond)),
				interrupted: true}
		}
		if errors.Is(err, ErrUnavailable) {
			return unavailable(err, "a terminal")
		}
		return broken(err, "could not run the command in your sandbox; try again in a moment")
	}
	out := string(stdout)
	if code != 0 {
		detail := firstLine(string(stderr))
		if detail == "" {
			detail = firstLine(out)
		}
		if detail == "" {
			return fail("command exited with code %d and printed nothing", code)
		}
		return fail("command exited with code %d: %s", code, detail)
	}
	if c.Stdout != nil {
		if !c.Stdout.MatchString(out) {
			if got := firstLine(out); got != "" {
				return fail("output did not match %s: got %q", c.Stdout, got)
			}
			return fail("output did not match %s: the command printed nothing", c.Stdout)
		}
		return pass("command succeeded and its output matched %s", c.Stdout)
	}
	return pass("command succeeded")
}
