//go:build linux

package shell

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// signalSession sends sig to every process whose session is sid: the shell
// that leads it, its foreground and background jobs, and what they
// started. Processes that are gone by the time they are signalled are
// skipped.
func signalSession(sid int, sig syscall.Signal) {
	_ = syscall.Kill(-sid, sig)
	for _, pid := range processes() {
		if s, ok := sessionOf(pid); ok && s == sid {
			_ = syscall.Kill(pid, sig)
		}
	}
}

// signalMarked sends sig to every process whose environment holds the
// entry marker (NAME=value) and returns how many it signalled.
func signalMarked(marker string, sig syscall.Signal) int {
	self := os.Getpid()
	want := []byte(marker)
	n := 0
	for _, pid := range processes() {
		if pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			continue
		}
		for entry := range bytes.SplitSeq(env, []byte{0}) {
			if bytes.Equal(entry, want) {
				if syscall.Kill(pid, sig) == nil {
					n++
				}
				break
			}
		}
	}
	return n
}

// processes lists the pids in /proc.
func processes() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// sessionOf reads a process's session id from /proc/<pid>/stat.
func sessionOf(pid int) (int, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may itself hold spaces and
	// parentheses: the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(stat[i+1:])
	// state ppid pgrp session ...
	if len(fields) < 4 {
		return 0, false
	}
	sid, err := strconv.Atoi(string(fields[3]))
	return sid, err == nil
}
