package images

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// fallbackMirror is used when this host's apt names no mirror for the suite.
const fallbackMirror = "http://deb.debian.org/debian"

// hostMirror returns the first mirror in root's apt sources (one-line
// sources.list and *.list files, deb822 *.sources files) that serves
// suite's main component, or "" when none does.
func hostMirror(root, suite string) string {
	files := []string{filepath.Join(root, "etc/apt/sources.list")}
	for _, pattern := range []string{"*.list", "*.sources"} {
		more, _ := filepath.Glob(filepath.Join(root, "etc/apt/sources.list.d", pattern))
		sort.Strings(more)
		files = append(files, more...)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var m string
		if strings.HasSuffix(f, ".sources") {
			m = mirrorFromDeb822(string(data), suite)
		} else {
			m = mirrorFromList(string(data), suite)
		}
		if m != "" {
			return m
		}
	}
	return ""
}

// mirrorFromList reads one-line apt sources: deb [options] URI suite comps...
func mirrorFromList(text, suite string) string {
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) < 4 || fields[0] != "deb" {
			continue
		}
		fields = fields[1:]
		if strings.HasPrefix(fields[0], "[") {
			for len(fields) > 0 && !strings.HasSuffix(fields[0], "]") {
				fields = fields[1:]
			}
			if len(fields) == 0 {
				continue
			}
			fields = fields[1:]
		}
		if len(fields) >= 3 && fields[1] == suite && contains(fields[2:], "main") && usableURI(fields[0]) {
			return strings.TrimRight(fields[0], "/")
		}
	}
	return ""
}

// mirrorFromDeb822 reads deb822 apt sources: stanzas of Types, URIs,
// Suites and Components, separated by blank lines.
func mirrorFromDeb822(text, suite string) string {
	for _, stanza := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		fields := map[string][]string{}
		enabled := true
		sc := bufio.NewScanner(strings.NewReader(stanza))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "#") {
				continue
			}
			key, value, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(line, " ") {
				continue
			}
			key = strings.ToLower(strings.TrimSpace(key))
			fields[key] = strings.Fields(value)
			if key == "enabled" && strings.EqualFold(strings.TrimSpace(value), "no") {
				enabled = false
			}
		}
		if !enabled || !contains(fields["types"], "deb") || !contains(fields["suites"], suite) || !contains(fields["components"], "main") {
			continue
		}
		for _, uri := range fields["uris"] {
			if usableURI(uri) {
				return strings.TrimRight(uri, "/")
			}
		}
	}
	return ""
}

func usableURI(uri string) bool {
	return strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (b *builder) debianMirror() string {
	if b.mirror == "" {
		b.mirror = b.opts.Mirror
		if b.mirror == "" {
			b.mirror = hostMirror("/", DebianSuite)
		}
		if b.mirror == "" {
			b.mirror = fallbackMirror
		}
	}
	return b.mirror
}

// rootfsPath is where root file system name is cached.
func (b *builder) rootfsPath(name string) string {
	return filepath.Join(b.opts.CacheDir, "rootfs", name+"-"+b.cat.rootfsKey(name)+".tar")
}

// ensureRootfs returns the tarball of root file system name, making it with
// debootstrap when the cache lacks it.
func (b *builder) ensureRootfs(ctx context.Context, name string) (string, error) {
	if p, ok := b.rootfs[name]; ok {
		return p, nil
	}
	tarball := b.rootfsPath(name)
	if _, err := os.Stat(tarball); err == nil {
		b.rootfs[name] = tarball
		return tarball, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("the Debian root file system %s must be made, and debootstrap needs root: run as root, or on a host where the images are built", name)
	}
	spec := b.cat.rootfs[name]
	work, err := os.MkdirTemp(filepath.Join(b.opts.CacheDir, "work"), "rootfs-"+name+"-")
	if err != nil {
		return "", fmt.Errorf("make work directory: %w", err)
	}
	defer removeTree(work)
	root := filepath.Join(work, "root")
	logFile := filepath.Join(b.opts.CacheDir, "logs", "rootfs-"+name+".log")
	os.Remove(logFile)
	args := []string{"--variant=minbase", "--components=main", "--cache-dir=" + filepath.Join(b.opts.CacheDir, "debs")}
	if len(spec.packages) > 0 {
		args = append(args, "--include="+strings.Join(spec.packages, ","))
	}
	args = append(args, DebianSuite, root, b.debianMirror())
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("debootstrap %s: debootstrap is not installed (apt-get install debootstrap): %w", name, err)
	}
	if err := (command{name: "debootstrap", args: args, logFile: logFile}).run(ctx, b.log); err != nil {
		return "", fmt.Errorf("debootstrap %s: %w", name, err)
	}
	for _, script := range []string{"files/" + name + "/setup.sh", "files/cleanup.sh"} {
		data, err := fs.ReadFile(embedded, script)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", script, err)
		}
		inside := "/tmp/kubelab-" + filepath.Base(script)
		if err := os.WriteFile(filepath.Join(root, inside), data, 0o755); err != nil {
			return "", fmt.Errorf("write %s: %w", script, err)
		}
		c := command{name: "chroot", args: []string{root, "/bin/sh", inside}, env: []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}, logFile: logFile}
		if err := c.run(ctx, b.log); err != nil {
			return "", fmt.Errorf("run %s in %s: %w", script, name, err)
		}
		os.Remove(filepath.Join(root, inside))
	}
	tmp := tarball + ".tmp"
	tarArgs := []string{"--numeric-owner", "--xattrs", "--xattrs-include=*", "--sort=name",
		"--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./run/*",
		"-C", root, "-cf", tmp, "."}
	if err := (command{name: "tar", args: tarArgs, logFile: logFile}).run(ctx, b.log); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("pack root file system %s: %w", name, err)
	}
	if err := os.Rename(tmp, tarball); err != nil {
		return "", fmt.Errorf("store %s: %w", tarball, err)
	}
	b.rootfs[name] = tarball
	return tarball, nil
}

// removeTree unmounts anything a failed debootstrap left mounted below dir
// (so that removal cannot reach the host's /proc or /dev), then removes dir.
func removeTree(dir string) {
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var mounts []string
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
				mounts = append(mounts, f[4])
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(mounts))) // deepest first
		for _, m := range mounts {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
				return // leave the tree rather than risk removing through a mount
			}
		}
	}
	os.RemoveAll(dir)
}
