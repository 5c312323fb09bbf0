// Command kubelab-runc is a runtime for dockerd on hosts whose root lacks
// CAP_SYS_RESOURCE (some CI virtual machines). Docker asks runc to give a
// --privileged container every capability, and runc fails with "unable to
// apply caps" when one of them is missing from its own bounding set.
//
// kubelab-runc sits where dockerd expects runc (register it in
// /etc/docker/daemon.json under "runtimes" and "default-runtime"). Before it
// execs the real runc with the same arguments, it removes CAP_SYS_RESOURCE
// from the bundle's config.json (runc create and runc run) and from the
// process file of runc exec --process (every docker exec). On a host that
// has the capability it changes nothing.
//
// The real runc is $KUBELAB_RUNC, else /usr/bin/runc, else /usr/sbin/runc.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// capSysResource is the capability this wrapper removes.
const capSysResource = "CAP_SYS_RESOURCE"

// capSysResourceBit is CAP_SYS_RESOURCE's number in /proc/*/status masks.
const capSysResourceBit = 24

// runcEnv names the variable that overrides where the real runc is.
const runcEnv = "KUBELAB_RUNC"

func main() {
	real, err := findRunc(os.Getenv(runcEnv), os.Args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubelab-runc:", err)
		os.Exit(1)
	}
	args := os.Args[1:]
	if !hasCapability(capSysResourceBit) {
		if err := prepare(args); err != nil {
			fmt.Fprintln(os.Stderr, "kubelab-runc:", err)
			os.Exit(1)
		}
	}
	argv := append([]string{real}, args...)
	if err := syscall.Exec(real, argv, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "kubelab-runc: exec %s: %v\n", real, err)
		os.Exit(1)
	}
}

// findRunc returns the path of the real runc: override when set, else the
// first of the usual places that exists and is not this program (self).
func findRunc(override, self string) (string, error) {
	if override != "" {
		return override, nil
	}
	selfPath, _ := filepath.EvalSymlinks(self)
	for _, p := range []string{"/usr/bin/runc", "/usr/sbin/runc"} {
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue
		}
		if selfPath != "" && resolved == selfPath {
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("no runc found in /usr/bin or /usr/sbin; set %s to its path", runcEnv)
}

// hasCapability reports whether bit is in this process's bounding set. If
// the set cannot be read it answers false, so the edit is made: removing a
// capability is always safe for runc, keeping a missing one is not.
func hasCapability(bit uint) bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	mask, ok := boundingSet(string(data))
	return ok && mask&(1<<bit) != 0
}

// boundingSet parses the CapBnd line of a /proc/*/status file.
func boundingSet(status string) (uint64, bool) {
	for _, line := range strings.Split(status, "\n") {
		v, ok := strings.CutPrefix(line, "CapBnd:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		return mask, err == nil
	}
	return 0, false
}

// prepare edits the JSON file the runc command line in args points at.
func prepare(args []string) error {
	path, kind := target(args)
	switch kind {
	case "":
		return nil
	case "config":
		return editFile(path, stripConfig)
	default:
		return editFile(path, stripProcess)
	}
}

// Flags of runc that take a value, for skipping over values when scanning.
var (
	globalValueFlags = map[string]bool{"root": true, "log": true, "log-format": true, "criu": true, "rootless": true}
	createValueFlags = map[string]bool{"bundle": true, "b": true, "console-socket": true, "pid-file": true, "preserve-fds": true}
	execValueFlags   = map[string]bool{
		"console-socket": true, "cwd": true, "env": true, "e": true, "user": true, "u": true,
		"additional-gids": true, "g": true, "process": true, "p": true, "pid-file": true,
		"process-label": true, "apparmor": true, "cap": true, "c": true, "preserve-fds": true, "cgroup": true,
	}
)

// target finds the file to edit in a runc command line. kind is "config"
// for a bundle's config.json (create, run), "process" for the process file of
// exec, or "" when there is nothing to edit.
func target(args []string) (path, kind string) {
	i := 0
	for i < len(args) {
		name, _, hasValue, ok := flagOf(args[i])
		if !ok {
			break
		}
		i++
		if !hasValue && globalValueFlags[name] {
			i++
		}
	}
	if i >= len(args) {
		return "", ""
	}
	cmd, rest := args[i], args[i+1:]
	switch cmd {
	case "create", "run":
		bundle, found := flagValue(rest, createValueFlags, "bundle", "b")
		if !found || bundle == "" {
			bundle = "."
		}
		return filepath.Join(bundle, "config.json"), "config"
	case "exec":
		if p, found := flagValue(rest, execValueFlags, "process", "p"); found && p != "" {
			return p, "process"
		}
	}
	return "", ""
}

// flagOf splits "-name", "--name" or "--name=value". ok is false for
// anything that is not a flag, including "--" and "-".
func flagOf(arg string) (name, value string, hasValue, ok bool) {
	if len(arg) < 2 || arg[0] != '-' || arg == "--" {
		return "", "", false, false
	}
	name = strings.TrimLeft(arg, "-")
	name, value, hasValue = strings.Cut(name, "=")
	return name, value, hasValue, name != ""
}

// flagValue returns the value of the first flag among names in a
// subcommand's arguments, which end at the first non-flag (the container ID).
func flagValue(args []string, valueFlags map[string]bool, names ...string) (string, bool) {
	for i := 0; i < len(args); i++ {
		name, value, hasValue, ok := flagOf(args[i])
		if !ok {
			return "", false
		}
		wanted := false
		for _, n := range names {
			wanted = wanted || name == n
		}
		if !hasValue && valueFlags[name] && i+1 < len(args) {
			i++
			value = args[i]
		}
		if wanted {
			return value, true
		}
	}
	return "", false
}

// editFile rewrites path with edit's result when edit changed something,
// atomically and with the file's mode kept. A missing file is left to runc
// to report.
func editFile(path string, edit func([]byte) ([]byte, bool, error)) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	out, changed, err := edit(data)
	if err != nil {
		return fmt.Errorf("edit %s: %w", path, err)
	}
	if !changed {
		return nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kubelab-runc-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}
