package shell

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// awaitExit blocks until process pid (a child of ours) has ended, without
// holding an OS thread: a blocking wait4 pins one thread, 16 KiB of stack
// and a kernel thread per shell, which adds up with hundreds of idle
// terminals. It watches the process's pidfd through the runtime's poller
// and asks the kernel, each time the poller wakes it (and once before it
// first sleeps), whether the process has exited, leaving it unreaped
// (WNOWAIT) for exec.Cmd.Wait. Wakeups without an exit are ignored. It
// returns false when it could not watch (no pidfd support: the caller's
// Wait then blocks as usual).
func awaitExit(pid int) bool {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	if f == nil {
		unix.Close(fd)
		return false
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var werr error
	err = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		for {
			werr = unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
			if !errors.Is(werr, unix.EINTR) {
				break
			}
		}
		// Done when it exited (the kernel filled info in: si_signo is
		// SIGCHLD; it stays zero while the process runs) or when asking failed
		// (ECHILD: reaped already); otherwise sleep until the pidfd is
		// readable.
		return werr != nil || info.Signo != 0
	})
	return err == nil && werr == nil
}
