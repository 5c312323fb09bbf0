package shell

import (
	"os"

	"golang.org/x/sys/unix"
)

// awaitExit blocks until process pid has ended, without holding an OS
// thread: it waits for the process's pidfd to become readable through the
// runtime's poller. A blocking wait4 would pin one thread per shell, which
// is most of a server's memory with hundreds of idle terminals. It returns
// false when pidfds are not available; the caller then just waits.
func awaitExit(pid int) bool {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	first := true
	err = rc.Read(func(uintptr) bool {
		if first {
			first = false
			return false // not yet asked the poller: wait for readability
		}
		return true
	})
	return err == nil
}
