package shell

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/ptyexec"
)

// Sandbox is one host-shell sandbox: a private HOME and the processes
// started in it.
type Sandbox struct {
	id     string
	owner  string
	home   string
	shell  string
	env    []string
	logger *slog.Logger
	wait   time.Duration
	exits  *ptyexec.Watcher

	mu      sync.Mutex
	deleted bool
	terms   map[*terminal]struct{}
	execs   map[int]struct{} // process groups of running Exec calls
}

var _ sandbox.Sandbox = (*Sandbox)(nil)

// ID returns the sandbox's ID.
func (s *Sandbox) ID() string { return s.id }

// Owner returns the learner the sandbox belongs to.
func (s *Sandbox) Owner() string { return s.owner }

// Kind returns sandbox.KindShell.
func (s *Sandbox) Kind() sandbox.Kind { return sandbox.KindShell }

// Home returns the sandbox's private HOME directory.
func (s *Sandbox) Home() string { return s.home }

// OpenTerminal starts the login shell on a new PTY of cols x rows, in HOME.
func (s *Sandbox) OpenTerminal(ctx context.Context, cols, rows uint16) (sandbox.Terminal, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open terminal in sandbox %s: %w", s.id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleted {
		return nil, fmt.Errorf("open terminal in sandbox %s: %w", s.id, sandbox.ErrNotFound)
	}
	cmd := exec.Command(s.shell, "-l")
	cmd.Env = s.env
	cmd.Dir = s.home
	t, err := startTerminal(cmd, cols, rows, s.exits, s.wait, s.logger)
	if err != nil {
		return nil, fmt.Errorf("open terminal in sandbox %s: %w", s.id, err)
	}
	s.terms[t] = struct{}{}
	t.onClose = func() {
		s.mu.Lock()
		delete(s.terms, t)
		s.mu.Unlock()
	}
	return t, nil
}

// Exec runs script with the shell's -c in HOME, with the sandbox's
// environment and no standard input, and waits for it. Each of stdout and
// stderr keeps at most its first MiB. Cancelling ctx kills the script's
// whole process group and returns an error wrapping ctx.Err().
func (s *Sandbox) Exec(ctx context.Context, script string) (sandbox.ExecResult, error) {
	stdout, stderr := sandbox.CappedBuffer{Max: outputCap}, sandbox.CappedBuffer{Max: outputCap}
	cmd := exec.CommandContext(ctx, s.shell, "-c", script)
	cmd.Env = s.env
	cmd.Dir = s.home
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	// A background process that kept stdout open would hold Wait forever
	// once the script was cancelled.
	cmd.WaitDelay = time.Second

	s.mu.Lock()
	if s.deleted {
		s.mu.Unlock()
		return sandbox.ExecResult{}, fmt.Errorf("exec in sandbox %s: %w", s.id, sandbox.ErrNotFound)
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return sandbox.ExecResult{}, fmt.Errorf("exec in sandbox %s: %w", s.id, err)
	}
	pgid := cmd.Process.Pid
	s.execs[pgid] = struct{}{}
	s.mu.Unlock()

	err := cmd.Wait()

	s.mu.Lock()
	delete(s.execs, pgid)
	s.mu.Unlock()

	res := sandbox.ExecResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: cmd.ProcessState.ExitCode()}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return res, fmt.Errorf("exec in sandbox %s: %w", s.id, ctxErr)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return res, fmt.Errorf("exec in sandbox %s: %w", s.id, err)
	}
	return res, nil
}

// shutdown marks the sandbox deleted, closes its terminals and kills every
// process that carries its marker.
func (s *Sandbox) shutdown(ctx context.Context) {
	s.mu.Lock()
	s.deleted = true
	terms := make([]*terminal, 0, len(s.terms))
	for t := range s.terms {
		terms = append(terms, t)
	}
	groups := make([]int, 0, len(s.execs))
	for g := range s.execs {
		groups = append(groups, g)
	}
	s.mu.Unlock()

	for _, g := range groups {
		_ = killGroup(g, syscall.SIGKILL)
	}
	var wg sync.WaitGroup
	for _, t := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.kill()
		}()
	}
	wg.Wait()
	// Whatever escaped the terminal's session or an Exec's group still has
	// the sandbox's marker in its environment.
	if n := signalMarked(markerVar+"="+s.id, syscall.SIGKILL); n > 0 {
		s.logger.Info("killed leftover sandbox processes", "count", n)
	}
}

// killGroup sends sig to the process group pgid.
func killGroup(pgid int, sig syscall.Signal) error {
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
