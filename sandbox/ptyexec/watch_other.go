//go:build !linux

package ptyexec

// Watcher calls a function when a child process exits. Here it cannot
// tell without reaping the process, so it calls the function at once on a
// goroutine of its own, whose Wait then blocks until the exit.
type Watcher struct{}

// OnExit calls f on a goroutine of its own; f's Wait blocks until child
// process pid has exited.
func (w *Watcher) OnExit(pid int, f func()) { go f() }
