package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// commandError is a command that failed, in the style of kind's
// exec.RunError: the command line, pasteable into a shell, how it ended and
// what it wrote to stderr.
type commandError struct {
	args   []string
	err    error
	stderr []byte
}

func (e *commandError) Error() string {
	msg := shellJoin(e.args) + ": " + e.err.Error()
	if s := strings.TrimSpace(string(e.stderr)); s != "" {
		msg += ": " + s
	}
	return msg
}

func (e *commandError) Unwrap() error { return e.err }

// stderrOf returns what the failed command behind err wrote to stderr.
func stderrOf(err error) string {
	var ce *commandError
	if errors.As(err, &ce) {
		return string(ce.stderr)
	}
	return ""
}

// docker runs the docker CLI.
type docker struct {
	bin    string
	logger *slog.Logger
}

// run runs docker with args, feeding it stdin (nil for none), and returns
// its standard output. A failure is a *commandError; when ctx ended first,
// the error wraps ctx.Err() instead.
func (d docker) run(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, d.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = stdin
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// In a process group of its own, killed whole when ctx ends: nothing
	// it started keeps the output pipes, and Wait, open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	d.logger.Debug("docker", "args", shellJoin(args), "took", time.Since(start).Round(time.Millisecond), "err", err)
	if err != nil {
		full := append([]string{d.bin}, args...)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return stdout.Bytes(), fmt.Errorf("%s: %w", shellJoin(full), ctxErr)
		}
		return stdout.Bytes(), &commandError{args: full, err: err, stderr: stderr.Bytes()}
	}
	return stdout.Bytes(), nil
}

// shellJoin quotes args for a POSIX shell where they need it.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = shellQuote(a)
	}
	return strings.Join(out, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell, leaving plain words alone.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
