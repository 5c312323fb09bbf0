package kind

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The runner is tested with sh standing in for docker: the error format is
// the same for any command.
func TestRunErrorCarriesCommandAndStderr(t *testing.T) {
	t.Parallel()
	d := docker{bin: "sh", logger: slog.New(slog.DiscardHandler)}
	out, err := d.run(t.Context(), nil, "-c", "echo partial; echo 'no such image' >&2; exit 125")
	want := `sh -c 'echo partial; echo '\''no such image'\'' >&2; exit 125': exit status 125: no such image`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if string(out) != "partial\n" {
		t.Errorf("stdout = %q, want what was printed before the failure", out)
	}
	if got := stderrOf(err); got != "no such image\n" {
		t.Errorf("stderrOf = %q", got)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 125 {
		t.Errorf("err does not unwrap to the exit status 125: %v", err)
	}
}

func TestRunStdinAndCancel(t *testing.T) {
	t.Parallel()
	d := docker{bin: "sh", logger: slog.New(slog.DiscardHandler)}
	out, err := d.run(t.Context(), strings.NewReader("fed"), "-c", "cat")
	if err != nil || string(out) != "fed" {
		t.Fatalf("run with stdin = %q, %v; want fed", out, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = d.run(ctx, nil, "-c", "sleep 30")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if !strings.HasPrefix(err.Error(), "sh -c 'sleep 30': ") {
		t.Errorf("err = %q, want it to name the command", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("run returned %v after its deadline", d)
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"docker":                       "docker",
		"--label=kubelab.io/owner=ada": "--label=kubelab.io/owner=ada",
		"{{.Id}}":                      "'{{.Id}}'",
		"it's":                         `'it'\''s'`,
		"":                             "''",
		"a b":                          "'a b'",
	}
	for in, want := range tests {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// The script that ends a terminal's processes in the workstation, run here
// on the host against real processes.
func TestKillScript(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("needs /proc")
	}
	start := func(t *testing.T, marker, script string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = append(os.Environ(), marker)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
		go func() { _ = cmd.Wait() }()
		return cmd
	}
	run := func(t *testing.T, sig, marker string, tenths int, until string) (string, int) {
		t.Helper()
		out, err := exec.Command("bash", "-c", killScript, "kubelab-kill", sig, marker, strconv.Itoa(tenths), until).Output()
		code := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out)), code
	}

	t.Run("signals marked processes and their children", func(t *testing.T) {
		t.Parallel()
		marker := markerVar + "=" + newToken()
		other := start(t, markerVar+"=someone-else", "sleep 60")
		start(t, marker, "sleep 60 & sleep 60 & wait")
		time.Sleep(200 * time.Millisecond) // let bash fork
		out, code := run(t, "TERM", marker, 50, untilAll)
		if out != "3" || code != 0 {
			t.Errorf("kill TERM = %q, exit %d; want 3 signalled, exit 0", out, code)
		}
		if err := syscall.Kill(other.Process.Pid, 0); err != nil {
			t.Errorf("an unmarked process was killed: %v", err)
		}
		out, code = run(t, "KILL", marker, 0, untilAll)
		if out != "0" || code != 0 {
			t.Errorf("second kill = %q, exit %d; want nothing left", out, code)
		}
	})

	t.Run("waits for the session leader only", func(t *testing.T) {
		t.Parallel()
		marker := markerVar + "=" + newToken()
		start(t, marker, `trap "" TERM; while :; do sleep 0.05; done`) // a job that ignores SIGTERM
		leader := exec.Command("sleep", "63")                          // a login shell stand-in
		leader.Env = append(os.Environ(), marker)
		leader.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := leader.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = leader.Process.Kill() })
		go func() { _ = leader.Wait() }()
		time.Sleep(200 * time.Millisecond)
		if out, code := run(t, "TERM", marker, 30, untilLeader); code != 0 || out == "0" {
			t.Errorf("TERM, waiting for the leader = %q, exit %d; want exit 0 once the leader is gone", out, code)
		}
		if out, code := run(t, "TERM", marker, 2, untilAll); code != 1 || out == "0" {
			t.Errorf("TERM, waiting for all = %q, exit %d; want the job left, exit 1", out, code)
		}
		if out, code := run(t, "KILL", marker, 30, untilAll); code != 0 || out == "0" {
			t.Errorf("KILL = %q, exit %d; want the job killed, exit 0", out, code)
		}
	})

	t.Run("reports survivors", func(t *testing.T) {
		t.Parallel()
		marker := markerVar + "=" + newToken()
		start(t, marker, `trap "" TERM; while :; do sleep 0.05; done`)
		time.Sleep(200 * time.Millisecond)
		if out, code := run(t, "TERM", marker, 3, untilAll); code != 1 || out == "0" {
			t.Errorf("kill TERM of a process that ignores it = %q, exit %d; want exit 1", out, code)
		}
		if out, code := run(t, "KILL", marker, 30, untilAll); code != 0 || out == "0" {
			t.Errorf("kill KILL = %q, exit %d; want exit 0", out, code)
		}
	})
}
