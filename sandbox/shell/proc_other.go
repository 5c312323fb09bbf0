//go:build !linux

package shell

import "syscall"

// signalSession sends sig to the process group of the session's leader.
// Without /proc, jobs the shell moved to groups of their own are not
// reached.
func signalSession(sid int, sig syscall.Signal) {
	_ = syscall.Kill(-sid, sig)
}

// signalMarked cannot find processes by their environment without /proc;
// it signals nothing.
func signalMarked(marker string, sig syscall.Signal) int { return 0 }
