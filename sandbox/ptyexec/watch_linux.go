package ptyexec

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Watcher calls a function when a child process exits, with one goroutine
// for all the processes it watches, woken by SIGCHLD: a goroutine per
// process would keep its stack (8 KiB once grown) for as long as each
// terminal stays open, and a blocking wait would pin an OS thread each.
// The goroutine runs only while something is watched. The zero Watcher is
// ready to use; its methods are safe for concurrent use.
type Watcher struct {
	mu   sync.Mutex
	pids map[int]func()
	sig  chan os.Signal // non-nil while the goroutine runs
}

// OnExit calls f, on a goroutine of its own, once child process pid has
// exited. The process is left for the caller to reap (exec.Cmd.Wait then
// returns at once with its status).
func (w *Watcher) OnExit(pid int, f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sig == nil {
		// Listen before looking, so that an exit after the look is heard.
		w.sig = make(chan os.Signal, 1)
		signal.Notify(w.sig, syscall.SIGCHLD)
		go w.loop(w.sig)
	}
	if exited(pid) {
		go f()
		if len(w.pids) == 0 {
			w.stopLocked()
		}
		return
	}
	if w.pids == nil {
		w.pids = make(map[int]func())
	}
	w.pids[pid] = f
}

// loop looks at every watched process each time a child of ours exited
// (signals coalesce: one SIGCHLD may stand for several exits).
func (w *Watcher) loop(sig chan os.Signal) {
	for range sig {
		w.mu.Lock()
		for pid, f := range w.pids {
			if exited(pid) {
				delete(w.pids, pid)
				go f()
			}
		}
		if len(w.pids) == 0 && w.sig == sig {
			w.stopLocked()
		}
		w.mu.Unlock()
	}
}

// stopLocked stops listening; the goroutine ends. With w.mu held.
func (w *Watcher) stopLocked() {
	signal.Stop(w.sig)
	close(w.sig)
	w.sig = nil
}

// exited reports whether child process pid has exited, leaving it
// unreaped (WNOWAIT), or is gone already (reaped: ECHILD).
func exited(pid int) bool {
	var info unix.Siginfo
	var err error
	for {
		err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	// The kernel fills info in when the process has exited (si_signo is
	// SIGCHLD); it stays zero while the process runs.
	return err != nil || info.Signo != 0
}
