package shell

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/ptyexec"
)

// drainTimeout is how long, after the shell ended, the terminal keeps
// reading output that is still in the PTY before it hangs up on processes
// that hold the PTY open (background jobs that ignored SIGHUP).
const drainTimeout = 2 * time.Second

// terminal is a shell on a PTY: Read, Write and Resize are the PTY's.
type terminal struct {
	*ptyexec.PTY
	cmd     *exec.Cmd
	sid     int // the shell's pid: it leads its own session and group
	wait    time.Duration
	logger  *slog.Logger
	onClose func()

	exited   chan struct{} // closed when the shell has been reaped
	code     int           // exit code, valid once exited is closed
	closeMu  sync.Once
	closeErr error
}

var (
	_ sandbox.Terminal   = (*terminal)(nil)
	_ sandbox.ExitWaiter = (*terminal)(nil)
)

// startTerminal starts cmd on a new PTY of cols x rows as the leader of its
// own session, with the PTY as its controlling terminal; exits tells when
// it ended.
func startTerminal(cmd *exec.Cmd, cols, rows uint16, exits *ptyexec.Watcher, wait time.Duration, logger *slog.Logger) (*terminal, error) {
	pty, err := ptyexec.Start(cmd, cols, rows)
	if err != nil {
		return nil, err
	}
	t := &terminal{
		PTY:    pty,
		cmd:    cmd,
		sid:    cmd.Process.Pid,
		wait:   wait,
		logger: logger.With("pid", cmd.Process.Pid),
		exited: make(chan struct{}),
	}
	exits.OnExit(t.sid, t.reap)
	return t, nil
}

// reap reaps the shell once it exited, then hangs up on what is left of
// its session and, if the PTY still does not report end of file after
// drainTimeout, closes it so that Read returns.
func (t *terminal) reap() {
	err := t.cmd.Wait()
	t.code = t.cmd.ProcessState.ExitCode()
	close(t.exited)
	t.logger.Debug("shell exited", "code", t.code, "err", err)
	signalSession(t.sid, syscall.SIGHUP)
	select {
	case <-t.EOF():
	case <-time.After(drainTimeout):
		t.CloseMaster()
	}
}

// Wait blocks until the shell has ended and returns its exit code (-1 when
// a signal killed it).
func (t *terminal) Wait(ctx context.Context) (int, error) {
	select {
	case <-t.exited:
		return t.code, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("wait for shell: %w", ctx.Err())
	}
}

// Close hangs up, as closing a terminal window does: it closes the PTY (the
// kernel hangs up the session, and the shell reads end of file), sends
// SIGHUP to the shell's whole session, SIGTERM if the shell is still there
// after the close timeout, SIGKILL after another, and reaps the shell.
// Closing twice is harmless.
func (t *terminal) Close() error {
	t.closeMu.Do(func() {
		t.closeErr = t.hangup()
		if t.onClose != nil {
			t.onClose()
		}
	})
	return t.closeErr
}

func (t *terminal) hangup() error {
	// The PTY goes first: an interactive bash may miss a SIGHUP that lands
	// just as readline starts waiting for input, and it ignores SIGTERM,
	// but it never misses end of file on its terminal.
	t.CloseMaster()
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		signalSession(t.sid, sig)
		select {
		case <-t.exited:
			return nil
		case <-time.After(t.wait):
			t.logger.Info("shell still running after signal", "signal", sig.String())
		}
	}
	signalSession(t.sid, syscall.SIGKILL)
	select {
	case <-t.exited:
		return nil
	case <-time.After(t.wait):
		return fmt.Errorf("close terminal: shell %d did not exit after SIGKILL", t.sid)
	}
}

// kill ends the shell and everything in its session at once (the sandbox
// is being deleted) and closes the terminal.
func (t *terminal) kill() {
	signalSession(t.sid, syscall.SIGKILL)
	select {
	case <-t.exited:
	case <-time.After(t.wait):
	}
	_ = t.Close()
}
