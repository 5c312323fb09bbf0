package kind

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/ptyexec"
)

// drainTimeout is how long, after the docker CLI ended, the terminal keeps
// reading output still in the PTY before it closes it.
const drainTimeout = 2 * time.Second

// terminal is a `docker exec -it` CLI on a host PTY, attached to a login
// shell in the workstation. The PTY's master is kept in non-blocking mode
// so that closing it interrupts a blocked Read.
//
// The docker CLI does not pass signals on to the shell, and killing it
// leaves the shell running in the workstation; so the shell and what it
// starts carry a marker in their environment, and Close signals the marked
// processes inside the workstation (SIGHUP, then SIGTERM, then SIGKILL,
// each after the close timeout) with a script run there as the learner.
type terminal struct {
	*ptyexec.PTY
	cmd     *exec.Cmd // the docker CLI
	sb      *Sandbox
	marker  string // NAME=value in the environment of the shell and its children
	wait    time.Duration
	logger  *slog.Logger
	closing chan struct{} // closed when Close begins

	exited   chan struct{} // closed when the docker CLI has been reaped
	code     int           // its exit code (the shell's), valid once exited is closed
	closeMu  sync.Once
	closeErr error
}

var (
	_ sandbox.Terminal   = (*terminal)(nil)
	_ sandbox.ExitWaiter = (*terminal)(nil)
)

// startTerminal starts the docker CLI cmd on a new PTY of cols x rows as
// the leader of its own session, with the PTY as its controlling terminal.
// The docker CLI reads the PTY's size and gives it to the shell's terminal.
func startTerminal(cmd *exec.Cmd, cols, rows uint16, sb *Sandbox, marker string) (*terminal, error) {
	pty, err := ptyexec.Start(cmd, cols, rows)
	if err != nil {
		return nil, err
	}
	t := &terminal{
		PTY:     pty,
		cmd:     cmd,
		sb:      sb,
		marker:  marker,
		wait:    sb.p.opts.closeTimeout,
		logger:  sb.p.logger.With("sandbox_id", sb.id, "pid", cmd.Process.Pid),
		closing: make(chan struct{}),
		exited:  make(chan struct{}),
	}
	sb.p.exits.OnExit(cmd.Process.Pid, t.reap)
	return t, nil
}

// reap reaps the docker CLI once it exited. When the shell ended on its own (the
// learner typed exit), it hangs up on the jobs the shell left running, as
// a terminal's hangup does; then, if the PTY still does not report end of
// file after drainTimeout, it closes it so that Read returns.
func (t *terminal) reap() {
	err := t.cmd.Wait()
	t.code = t.cmd.ProcessState.ExitCode()
	close(t.exited)
	t.logger.Debug("docker exec ended", "code", t.code, "err", err)
	select {
	case <-t.closing:
	default:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := t.sb.p.signalMarked(ctx, t.sb.id, t.marker, "HUP", 0, untilAll); err != nil {
			t.logger.Debug("hang up on the shell's jobs", "err", err)
		}
		cancel()
	}
	select {
	case <-t.EOF():
	case <-time.After(drainTimeout):
		t.CloseMaster()
	}
}

// Resize sets the PTY's window size, as pty.Setsize does (the docker CLI
// gets SIGWINCH and resizes the shell's terminal in the workstation), and
// sets the same size on the shell's terminal there itself.
func (t *terminal) Resize(cols, rows uint16) error {
	if err := t.PTY.Resize(cols, rows); err != nil {
		return err
	}
	// The docker CLI passes the new size on asynchronously, after a
	// SIGWINCH and an API call: a line typed right after Resize could run
	// at the old size. Set the size of the shell's terminal in the
	// workstation too, and return when it is done.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := t.sb.p.docker.run(ctx, nil, "exec", "--user", learnerUser, workstationName(t.sb.id),
		"bash", "-c", resizeScript, "kubelab-resize", strconv.Itoa(int(rows)), strconv.Itoa(int(cols)), t.marker); err != nil {
		return fmt.Errorf("resize terminal to %dx%d in the workstation: %w", cols, rows, err)
	}
	return nil
}

// resizeScript sets the window size ($1 rows, $2 columns) of the terminal
// of the processes marked with $3 (NAME=value in their environment): the
// terminal the shell reads from. It runs as the learner, who owns it.
const resizeScript = `rows=$1 cols=$2 marker=$3
for d in /proc/[0-9]*; do
	while IFS= read -r -d '' e; do
		if [ "$e" = "$marker" ]; then
			tty=$(readlink "$d/fd/0" 2>/dev/null)
			case $tty in /dev/pts/*) exec stty -F "$tty" rows "$rows" cols "$cols" ;; esac
			break
		fi
	done 2>/dev/null <"$d/environ"
done
exit 1 # the shell is not (or no longer) there`

// Wait blocks until the docker CLI has ended and returns its exit code,
// which is the shell's when the shell ended on its own (-1 when a signal
// killed the CLI).
func (t *terminal) Wait(ctx context.Context) (int, error) {
	select {
	case <-t.exited:
		return t.code, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("wait for shell: %w", ctx.Err())
	}
}

// Close hangs up, as closing a terminal window does: it closes the PTY
// (the docker CLI gets SIGHUP and ends), then sends SIGHUP to the shell and
// everything it started in the workstation, SIGTERM to what is still there
// once the shell ended (or after the close timeout), SIGKILL to what is
// left after another, and reaps the CLI. Jobs that left the shell's
// session or ignore SIGHUP (nohup) end too. Closing twice is harmless.
func (t *terminal) Close() error {
	t.closeMu.Do(func() {
		close(t.closing)
		t.closeErr = t.hangup()
	})
	return t.closeErr
}

func (t *terminal) hangup() error {
	t.CloseMaster()
	var errs []error
	// SIGHUP ends the shell (it passes the hangup on to its jobs); what
	// is left once the shell is gone, or after the close timeout, gets
	// SIGTERM, and SIGKILL after another.
	steps := []struct{ sig, until string }{{"HUP", untilLeader}, {"TERM", untilAll}, {"KILL", untilAll}}
	for _, st := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), t.wait+10*time.Second)
		gone, err := t.sb.p.signalMarked(ctx, t.sb.id, t.marker, st.sig, t.wait, st.until)
		cancel()
		if err != nil {
			// The workstation is gone or stopped: so is the shell.
			if rerr := t.sb.p.running(context.Background(), t.sb.id); rerr != nil {
				break
			}
			errs = append(errs, fmt.Errorf("signal %s: %w", st.sig, err))
			continue
		}
		if !gone {
			t.logger.Info("shell still running after signal", "signal", st.sig)
		} else if st.until == untilAll {
			break
		}
	}
	// The CLI ends with the shell or on the PTY's hangup; make sure.
	select {
	case <-t.exited:
	case <-time.After(t.wait):
		_ = t.cmd.Process.Kill()
		select {
		case <-t.exited:
		case <-time.After(t.wait):
			errs = append(errs, fmt.Errorf("docker exec %d did not exit after SIGKILL", t.cmd.Process.Pid))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("close terminal in sandbox %s: %w", t.sb.id, errors.Join(errs...))
	}
	return nil
}
