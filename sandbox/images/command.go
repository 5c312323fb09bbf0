package images

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// command is one external program to run.
type command struct {
	name    string
	args    []string
	dir     string
	env     []string  // added to this process's environment
	stdin   io.Reader // nil: no input
	stdout  io.Writer // nil: captured (output) or discarded (run)
	logFile string    // when set, stdout and stderr are appended to it
}

// commandError is a failed command: the command line, pasteable into a
// shell, and the last lines it printed.
type commandError struct {
	cmd    string
	err    error
	output string
	log    string
}

func (e *commandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", e.cmd, e.err)
	if e.output != "" {
		fmt.Fprintf(&b, ": %s", e.output)
	}
	if e.log != "" {
		fmt.Fprintf(&b, " (full output in %s)", e.log)
	}
	return b.String()
}

func (e *commandError) Unwrap() error { return e.err }

// run runs c and waits for it.
func (c command) run(ctx context.Context, log *slog.Logger) error {
	_, err := c.exec(ctx, log, false)
	return err
}

// output runs c and returns its standard output, trimmed.
func (c command) output(ctx context.Context, log *slog.Logger) (string, error) {
	out, err := c.exec(ctx, log, true)
	return strings.TrimSpace(out), err
}

func (c command) exec(ctx context.Context, log *slog.Logger, capture bool) (string, error) {
	cmd := exec.CommandContext(ctx, c.name, c.args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = c.stdin
	cmd.WaitDelay = 10 * time.Second
	tail := &tailBuffer{max: 4096}
	var stdout bytes.Buffer
	var outs, errs []io.Writer
	errs = append(errs, tail)
	switch {
	case c.stdout != nil:
		outs = append(outs, c.stdout)
	case capture:
		outs = append(outs, &stdout)
	default:
		outs = append(outs, tail)
	}
	if c.logFile != "" {
		f, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return "", fmt.Errorf("open log %s: %w", c.logFile, err)
		}
		defer f.Close()
		fmt.Fprintf(f, "\n$ %s\n", c.String())
		outs = append(outs, f)
		errs = append(errs, f)
	}
	cmd.Stdout = io.MultiWriter(outs...)
	cmd.Stderr = io.MultiWriter(errs...)
	t0 := time.Now()
	err := cmd.Run()
	log.Debug("ran", "cmd", c.String(), "seconds", time.Since(t0).Seconds(), "err", err)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return stdout.String(), &commandError{cmd: c.String(), err: err, output: tail.lastLines(12), log: c.logFile}
	}
	return stdout.String(), nil
}

// String is the command line, quoted for a POSIX shell.
func (c command) String() string {
	var parts []string
	for _, e := range c.env {
		parts = append(parts, shellQuote(e))
	}
	parts = append(parts, shellQuote(c.name))
	for _, a := range c.args {
		parts = append(parts, shellQuote(a))
	}
	s := strings.Join(parts, " ")
	if c.dir != "" {
		s = "(cd " + shellQuote(c.dir) + " && " + s + ")"
	}
	return s
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

// lastLines returns up to n of the last lines, joined by " | " so an error
// stays on one line.
func (t *tailBuffer) lastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}

// docker runs the docker CLI.
type docker struct {
	bin string
	log *slog.Logger
}

func newDocker(opts Options) *docker {
	return &docker{bin: opts.Docker, log: opts.Logger}
}

func (d *docker) cmd(args ...string) command {
	return command{name: d.bin, args: args}
}

// imageInfo is what inspectImage reports.
type imageInfo struct {
	ID       string
	RepoTags []string
	Labels   map[string]string
	Size     int64
	Created  time.Time
}

// inspectImage describes ref; found is false when the host lacks it.
func (d *docker) inspectImage(ctx context.Context, ref string) (imageInfo, bool, error) {
	c := d.cmd("image", "inspect", "--format", "{{json .}}", ref)
	out, err := c.output(ctx, d.log)
	if err != nil {
		if strings.Contains(err.Error(), "No such image") || strings.Contains(err.Error(), "No such object") {
			return imageInfo{}, false, nil
		}
		return imageInfo{}, false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	var raw struct {
		ID       string `json:"Id"`
		RepoTags []string
		Created  string
		Size     int64
		Config   struct{ Labels map[string]string }
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		return imageInfo{}, false, fmt.Errorf("inspect image %s: decode: %w", ref, err)
	}
	created, _ := time.Parse(time.RFC3339Nano, raw.Created)
	return imageInfo{ID: raw.ID, RepoTags: raw.RepoTags, Labels: raw.Config.Labels, Size: raw.Size, Created: created}, true, nil
}
