package shell

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/sandboxtest"
)

func newProvider(t *testing.T) *Provider {
	t.Helper()
	return New(t.TempDir(), slog.New(slog.DiscardHandler))
}

func TestProviderSuite(t *testing.T) {
	t.Parallel()
	sandboxtest.TestProvider(t, func(t *testing.T) sandbox.Provider { return newProvider(t) },
		sandbox.Spec{Owner: "ada", Kind: sandbox.KindShell})
}

// create makes a sandbox that is deleted when the test ends.
func create(t *testing.T, p *Provider) *Sandbox {
	t.Helper()
	id := sandboxtest.NewID("sh")
	sb, err := p.Create(t.Context(), id, sandbox.Spec{Owner: "ada", Kind: sandbox.KindShell}, nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { _ = p.Delete(t.Context(), id) })
	return sb.(*Sandbox)
}

func TestCreateRefusesEngineAndCluster(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	tests := []struct {
		kind sandbox.Kind
		want string
	}{
		{sandbox.KindDocker, "create sandbox x1: the shell provider has no Docker engine or Kubernetes cluster, and this needs docker: not supported by this sandbox provider"},
		{sandbox.KindKubernetes, "create sandbox x1: the shell provider has no Docker engine or Kubernetes cluster, and this needs kubernetes: not supported by this sandbox provider"},
	}
	for _, tt := range tests {
		_, err := p.Create(t.Context(), "x1", sandbox.Spec{Owner: "ada", Kind: tt.kind}, nil)
		if !errors.Is(err, sandbox.ErrUnsupported) {
			t.Errorf("Create(%v) error = %v, want ErrUnsupported", tt.kind, err)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Create(%v) error = %q, want %q", tt.kind, err, tt.want)
		}
	}
	sb := create(t, p)
	if _, err := p.Grow(t.Context(), sb, sandbox.Spec{Owner: "ada", Kind: sandbox.KindDocker}, nil); !errors.Is(err, sandbox.ErrUnsupported) {
		t.Errorf("Grow to docker: error = %v, want ErrUnsupported", err)
	}
	got, err := p.Grow(t.Context(), sb, sandbox.Spec{Owner: "ada", Kind: sandbox.KindShell}, nil)
	if err != nil || got != sb {
		t.Errorf("Grow to shell = %v, %v; want the same sandbox", got, err)
	}
	if all, _ := p.List(t.Context()); len(all) != 1 {
		t.Errorf("List() has %d sandboxes after refused creates, want 1", len(all))
	}
}

func TestCreateSameIDTwice(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	sb := create(t, p)
	_, err := p.Create(t.Context(), sb.ID(), sandbox.Spec{Owner: "bob"}, nil)
	want := fmt.Sprintf("create sandbox %s: a sandbox with this id exists", sb.ID())
	if err == nil || err.Error() != want {
		t.Errorf("second Create = %v, want %q", err, want)
	}
}

// TestCleanEnvironment is not parallel: it sets a variable in the server's
// environment that must not reach the sandbox.
func TestCleanEnvironment(t *testing.T) {
	t.Setenv("KUBELAB_TEST_SECRET", "do-not-leak")
	p := newProvider(t)
	sb := create(t, p)
	res, err := sb.Exec(t.Context(), "env; echo cwd=$(pwd)")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Exec(env) = %+v, %v", res, err)
	}
	env := map[string]string{}
	var cwd string
	for line := range strings.Lines(string(res.Stdout)) {
		line = strings.TrimSuffix(line, "\n")
		if c, ok := strings.CutPrefix(line, "cwd="); ok {
			cwd = c
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	want := map[string]string{
		"PATH":            os.Getenv("PATH"),
		"HOME":            sb.Home(),
		"TERM":            "xterm-256color",
		"LANG":            "C.UTF-8",
		"USER":            p.user,
		"LOGNAME":         p.user,
		"SHELL":           p.shell,
		"KUBELAB_SANDBOX": sb.ID(),
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	// What the shell itself adds; bash -c drops PS1 (TestLoginShell sees it).
	shellVars := []string{"PWD", "SHLVL", "_", "OLDPWD", "PS1"}
	for k := range env {
		if _, ok := want[k]; !ok && !slices.Contains(shellVars, k) {
			t.Errorf("unexpected variable %s=%q in the sandbox", k, env[k])
		}
	}
	if cwd != sb.Home() {
		t.Errorf("cwd = %q, want HOME %q", cwd, sb.Home())
	}
	if filepath.Dir(sb.Home()) != p.baseDir || !strings.HasPrefix(filepath.Base(sb.Home()), "home-") {
		t.Errorf("HOME %q is not a home-* directory under %q", sb.Home(), p.baseDir)
	}
}

func TestLoginShell(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	sb := create(t, p)
	term := sandboxtest.OpenTerminal(t, sb, 80, 24)
	// The prompt is ours, with ~ for the private HOME.
	term.Expect(t, p.user+"@kubelab:~")
	// /etc/profile resets PATH; the sandbox's profile gives the server's back.
	typeLine(t, term, `echo "path=$PATH" "home=$(pwd)" "ps""1=ok"`)
	term.Expect(t, fmt.Sprintf("path=%s home=%s ps1=ok", os.Getenv("PATH"), sb.Home()))
	typeLine(t, term, `echo "prompt=$PS1"`)
	term.Expect(t, `prompt=\u@kubelab:\w\$ `)
}

func TestExecOutputIsCapped(t *testing.T) {
	t.Parallel()
	sb := create(t, newProvider(t))
	res, err := sb.Exec(t.Context(), `head -c 3000000 /dev/zero | tr '\0' a; head -c 1500000 /dev/zero | tr '\0' b >&2; exit 5`)
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if len(res.Stdout) != outputCap || len(res.Stderr) != outputCap || res.ExitCode != 5 {
		t.Errorf("got %d bytes of stdout, %d of stderr, exit %d; want %d, %d, 5", len(res.Stdout), len(res.Stderr), res.ExitCode, outputCap, outputCap)
	}
}

func TestExecCancelKillsGroup(t *testing.T) {
	t.Parallel()
	sb := create(t, newProvider(t))
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	go func() {
		// Cancel once the background job has written its pid.
		defer cancel()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if b, err := os.ReadFile(filepath.Join(sb.Home(), "pid")); err == nil && strings.HasSuffix(string(b), "\n") {
				close(started)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	_, err := sb.Exec(ctx, `sleep 1000 & echo $! > pid.tmp && mv pid.tmp pid; wait`)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Exec error = %v, want context.Canceled", err)
	}
	select {
	case <-started:
	default:
		t.Fatal("the script never wrote its pid")
	}
	pid := readPid(t, filepath.Join(sb.Home(), "pid"))
	waitGone(t, pid)
}

func TestShellExitCode(t *testing.T) {
	t.Parallel()
	sb := create(t, newProvider(t))
	term := sandboxtest.OpenTerminal(t, sb, 80, 24)
	// A background job keeps the PTY open; the shell's exit still ends it.
	typeLine(t, term, "sleep 1000 &")
	typeLine(t, term, "exit 3")
	select {
	case <-term.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("Read did not end after exit; output:\n%s", term.Output())
	}
	code, err := term.Terminal.(sandbox.ExitWaiter).Wait(t.Context())
	if err != nil || code != 3 {
		t.Errorf("Wait() = %d, %v; want 3, nil", code, err)
	}
}

func TestCloseEscalatesToKill(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.waitFor = 200 * time.Millisecond
	sb := create(t, p)
	term := sandboxtest.OpenTerminal(t, sb, 80, 24)
	// The shell and its job ignore SIGHUP and SIGTERM, and nothing reads
	// the terminal's end of file.
	typeLine(t, term, `trap '' HUP TERM; echo "trap""set"; while :; do sleep 1; done`)
	term.Expect(t, "trapset")
	start := time.Now()
	if err := term.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d < 2*p.waitFor {
		t.Errorf("Close returned after %v: a shell ignoring SIGHUP and SIGTERM cannot be gone before SIGKILL", d)
	}
	code, err := term.Terminal.(sandbox.ExitWaiter).Wait(t.Context())
	if err != nil || code != -1 {
		t.Errorf("Wait() = %d, %v; want -1 (killed), nil", code, err)
	}
	select {
	case <-term.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not end after Close")
	}
}

func TestDeleteKillsEverything(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	sb := create(t, p)
	term := sandboxtest.OpenTerminal(t, sb, 80, 24)
	// A job of the shell, and one that left its session.
	typeLine(t, term, `sleep 1001 & echo "job=$!="; setsid sleep 1002 & echo "esc=$!="; echo "start""ed"`)
	term.Expect(t, "started")
	out := term.Output()
	pids := []int{pidAfter(t, out, "job="), pidAfter(t, out, "esc=")}
	execDone := make(chan error, 1)
	go func() {
		_, err := sb.Exec(t.Context(), "sleep 1003")
		execDone <- err
	}()
	if err := p.Delete(t.Context(), sb.ID()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, pid := range pids {
		waitGone(t, pid)
	}
	select {
	case <-term.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("terminal still open after Delete")
	}
	select {
	case <-execDone:
	case <-time.After(10 * time.Second):
		t.Fatal("Exec still running after Delete")
	}
	if _, err := os.Stat(sb.Home()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("HOME %s still there after Delete: %v", sb.Home(), err)
	}
	if _, err := sb.OpenTerminal(t.Context(), 80, 24); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("OpenTerminal after Delete: %v, want ErrNotFound", err)
	}
}

func typeLine(t *testing.T, term sandbox.Terminal, line string) {
	t.Helper()
	if _, err := term.Write([]byte(line + "\r")); err != nil {
		t.Fatalf("type %q: %v", line, err)
	}
}

// pidAfter parses the number between prefix and the next "=" in out's
// command output (not in the echoed command line, where a $ follows).
func pidAfter(t *testing.T, out, prefix string) int {
	t.Helper()
	for rest := out; ; {
		i := strings.Index(rest, prefix)
		if i < 0 {
			t.Fatalf("no %q followed by a pid in:\n%s", prefix, out)
		}
		rest = rest[i+len(prefix):]
		var pid int
		if _, err := fmt.Sscanf(rest, "%d=", &pid); err == nil {
			return pid
		}
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscanf(string(b), "%d", &pid); err != nil {
		t.Fatalf("pid file %s: %q", path, b)
	}
	return pid
}

// waitGone waits until pid has exited (a zombie counts: nothing reaps
// orphans in some containers).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d still running: %s", pid, stat)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
