package shell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"kubelab/sandbox"
)

// drainTimeout is how long, after the shell ended, the terminal keeps
// reading output that is still in the PTY before it hangs up on processes
// that hold the PTY open (background jobs that ignored SIGHUP).
const drainTimeout = 2 * time.Second

// terminal is a shell on a PTY. The PTY's master is kept in non-blocking
// mode so that closing it interrupts a blocked Read.
type terminal struct {
	master  *os.File
	cmd     *exec.Cmd
	sid     int // the shell's pid: it leads its own session and group
	wait    time.Duration
	logger  *slog.Logger
	onClose func()

	exited   chan struct{} // closed when the shell has been reaped
	code     int           // exit code, valid once exited is closed
	eof      chan struct{} // closed when Read saw the PTY hang up
	eofOnce  sync.Once
	closeMu  sync.Once
	closeErr error
	masterMu sync.Once
}

var (
	_ sandbox.Terminal   = (*terminal)(nil)
	_ sandbox.ExitWaiter = (*terminal)(nil)
)

// startTerminal starts cmd on a new PTY of cols x rows as the leader of its
// own session, with the PTY as its controlling terminal.
func startTerminal(cmd *exec.Cmd, cols, rows uint16, wait time.Duration, logger *slog.Logger) (*terminal, error) {
	master, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	defer tty.Close()
	master, err = nonblocking(master)
	if err != nil {
		return nil, err
	}
	if cols == 0 || rows == 0 {
		cols, rows = 80, 24
	}
	// The slave end may take a blocking ioctl; the master may not.
	if err := pty.Setsize(tty, &pty.Winsize{Cols: cols, Rows: rows}); err != nil {
		master.Close()
		return nil, fmt.Errorf("size pty: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	t := &terminal{
		master: master,
		cmd:    cmd,
		sid:    cmd.Process.Pid,
		wait:   wait,
		logger: logger.With("pid", cmd.Process.Pid),
		exited: make(chan struct{}),
		eof:    make(chan struct{}),
	}
	go t.reap()
	return t, nil
}

// nonblocking returns a pollable copy of the PTY master. pty.Open leaves
// the master in blocking mode (it asks for its Fd), where Close cannot
// interrupt a Read that waits for output.
func nonblocking(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("dup pty: %w", err)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("set pty non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// reap waits for the shell, then hangs up on what is left of its session
// and, if the PTY still does not report end of file after drainTimeout,
// closes it so that Read returns.
func (t *terminal) reap() {
	awaitExit(t.sid) // so that Wait below finds the shell exited, and pins no thread
	err := t.cmd.Wait()
	t.code = t.cmd.ProcessState.ExitCode()
	close(t.exited)
	t.logger.Debug("shell exited", "code", t.code, "err", err)
	signalSession(t.sid, syscall.SIGHUP)
	select {
	case <-t.eof:
	case <-time.After(drainTimeout):
		t.closeMaster()
	}
}

// Read reads output of the PTY. It returns io.EOF once the shell and
// everything else on the PTY are gone, or the terminal was closed.
func (t *terminal) Read(p []byte) (int, error) {
	n, err := t.master.Read(p)
	if err != nil && (errors.Is(err, syscall.EIO) || errors.Is(err, os.ErrClosed)) {
		t.eofOnce.Do(func() { close(t.eof) })
		return n, io.EOF
	}
	return n, err
}

// Write types p into the PTY.
func (t *terminal) Write(p []byte) (int, error) {
	n, err := t.master.Write(p)
	if err != nil && errors.Is(err, os.ErrClosed) {
		return n, fmt.Errorf("write terminal: %w", err)
	}
	return n, err
}

// Resize sets the PTY's window size; the shell gets SIGWINCH.
func (t *terminal) Resize(cols, rows uint16) error {
	if cols == 0 || rows == 0 {
		return fmt.Errorf("resize terminal to %dx%d: size must be positive", cols, rows)
	}
	// pty.Setsize would ask for the master's Fd, which puts it back in
	// blocking mode; do the same ioctl through the runtime's poller instead.
	rc, err := t.master.SyscallConn()
	if err != nil {
		return fmt.Errorf("resize terminal: %w", err)
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows})
	}); err != nil {
		return fmt.Errorf("resize terminal: %w", err)
	}
	if ioErr != nil {
		return fmt.Errorf("resize terminal to %dx%d: %w", cols, rows, ioErr)
	}
	return nil
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
	t.closeMaster()
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

func (t *terminal) closeMaster() {
	t.masterMu.Do(func() { _ = t.master.Close() })
}
