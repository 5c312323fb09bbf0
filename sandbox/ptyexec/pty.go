// Package ptyexec runs the sandbox providers' terminals: Start puts a
// command on a new pseudo-terminal whose master stays pollable, and a
// Watcher tells when such commands exit, without a goroutine or an OS
// thread waiting for each of them.
package ptyexec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is the master side of a command's terminal. The master is kept in
// non-blocking mode so that closing it interrupts a blocked Read. Its
// methods are safe for concurrent use.
type PTY struct {
	master    *os.File
	eof       chan struct{} // closed when Read saw the PTY hang up
	eofOnce   sync.Once
	closeOnce sync.Once
}

// Start starts cmd on a new PTY of cols x rows (80x24 when either is 0) as
// the leader of its own session, with the PTY as its controlling terminal.
// It sets cmd's standard streams and SysProcAttr; the caller reaps cmd.
func Start(cmd *exec.Cmd, cols, rows uint16) (*PTY, error) {
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
	return &PTY{master: master, eof: make(chan struct{})}, nil
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

// Read reads output of the PTY. It returns io.EOF once everything on the
// PTY's other side is gone (the kernel hung it up) or the master was
// closed.
func (p *PTY) Read(b []byte) (int, error) {
	n, err := p.master.Read(b)
	if err != nil && (errors.Is(err, syscall.EIO) || errors.Is(err, os.ErrClosed)) {
		p.eofOnce.Do(func() { close(p.eof) })
		return n, io.EOF
	}
	return n, err
}

// EOF is closed once Read has returned io.EOF.
func (p *PTY) EOF() <-chan struct{} { return p.eof }

// Write types b into the PTY.
func (p *PTY) Write(b []byte) (int, error) {
	n, err := p.master.Write(b)
	if err != nil && errors.Is(err, os.ErrClosed) {
		return n, fmt.Errorf("write terminal: %w", err)
	}
	return n, err
}

// Resize sets the PTY's window size; the session's foreground process
// group gets SIGWINCH.
func (p *PTY) Resize(cols, rows uint16) error {
	if cols == 0 || rows == 0 {
		return fmt.Errorf("resize terminal to %dx%d: size must be positive", cols, rows)
	}
	// pty.Setsize would ask for the master's Fd, which puts it back in
	// blocking mode; do the same ioctl through the runtime's poller instead.
	rc, err := p.master.SyscallConn()
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

// CloseMaster closes the master: a blocked Read returns io.EOF, and the
// kernel hangs up the command's session. Closing twice is harmless.
func (p *PTY) CloseMaster() {
	p.closeOnce.Do(func() { _ = p.master.Close() })
}
