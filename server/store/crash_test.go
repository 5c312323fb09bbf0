package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv names the store directory a re-executed test binary writes
// to before it kills itself; see TestMain.
const crashChildEnv = "KUBELAB_STORE_CRASH_DIR"

// crashAttempts is how many attempts the child records before dying.
const crashAttempts = 5

// crashChild runs in the child process: it records crashAttempts attempts,
// printing each returned ID, and SIGKILLs itself the moment the last
// RecordAttempt returns, with the database still open: no Close, no
// checkpoint, no deferred anything.
func crashChild(dir string) {
	ctx := context.Background()
	db, err := Open(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(2)
	}
	for i := range crashAttempts {
		id, err := db.RecordAttempt(ctx, Attempt{
			Learner: "crash",
			Lesson:  "k8s/scale",
			Step:    1 + i%2,
			Passed:  i == 2, // step 1 passes on the third attempt
			Results: fmt.Appendf(nil, `{"i":%d}`, i),
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child: record:", err)
			os.Exit(2)
		}
		if i == crashAttempts-1 {
			// The ID is printed by a single write(2) of os.Stdout, which is
			// unbuffered, then the process dies at once.
			fmt.Fprintf(os.Stdout, "%d\n", id)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute) // not reached
		}
		fmt.Fprintf(os.Stdout, "%d\n", id)
	}
	os.Exit(3) // not reached
}

// TestCrashKeepsAttempts re-executes the test binary as a child that records
// attempts and is killed with SIGKILL right after its last RecordAttempt
// returns. Every attempt whose ID the child printed must be in the database
// when the parent opens it again.
func TestCrashKeepsAttempts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("child: err = %v, want it killed; stderr:\n%s", err, stderr.Bytes())
	}
	ws, ok := exitErr.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL; stderr:\n%s", exitErr, stderr.Bytes())
	}

	var printed []int64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		id, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("child printed %q, want attempt IDs", out)
		}
		printed = append(printed, id)
	}
	if len(printed) != crashAttempts {
		t.Fatalf("child printed %d IDs (%q), want %d", len(printed), out, crashAttempts)
	}

	// The commits are only in the write-ahead log: nothing checkpointed them
	// into the main file, so reopening must recover them from the WAL.
	wal, err := os.Stat(filepath.Join(dir, FileName+"-wal"))
	if err != nil || wal.Size() == 0 {
		t.Fatalf("after the crash the WAL is %v, %v; want a non-empty -wal file", wal, err)
	}

	db := mustOpenDBIn(t, dir)
	as, err := db.Attempts(ctx, "crash", "k8s/scale", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != crashAttempts {
		t.Fatalf("after the crash %d attempts are stored, want %d: %+v", len(as), crashAttempts, as)
	}
	for i, a := range as {
		// Newest first; the child recorded attempt i with results {"i":i}.
		n := crashAttempts - 1 - i
		if a.ID != printed[n] || string(a.Results) != fmt.Sprintf(`{"i":%d}`, n) {
			t.Errorf("attempt %d after the crash = ID %d results %s, want ID %d results {\"i\":%d}", n, a.ID, a.Results, printed[n], n)
		}
	}
	ps, err := db.LessonProgress(ctx, "crash", "k8s/scale")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("step %d: %d attempts, passed %v", p.Step, p.Attempts, p.Passed))
	}
	if want := []string{"step 1: 3 attempts, passed true", "step 2: 2 attempts, passed false"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("progress after the crash = %q, want %q", got, want)
	}
}
