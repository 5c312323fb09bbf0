// Package sandboxtest holds what tests of sandboxes share: TestProvider, the
// one suite every sandbox.Provider must pass (the shell provider now, the
// kind provider too), and Fake, a small in-memory Provider for tests of code
// that uses providers, such as the Manager.
package sandboxtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"kubelab/sandbox"
)

// waitLong bounds every wait of the suite: generous, for a loaded machine,
// but a hung provider still fails instead of hanging the test run.
const waitLong = 10 * time.Second

// TestProvider runs the shared provider suite against the Provider that
// newProvider returns, creating sandboxes for spec (spec.Owner defaults to
// "sandboxtest"). It only uses the sandbox interfaces, so it says nothing of
// how a provider isolates sandboxes beyond what a learner can see: separate
// files, separate terminals, a clean delete.
//
// The subtests run in order and share the first sandbox, because some
// providers take long to create one.
func TestProvider(t *testing.T, newProvider func(t *testing.T) sandbox.Provider, spec sandbox.Spec) {
	t.Helper()
	if spec.Owner == "" {
		spec.Owner = "sandboxtest"
	}
	p := newProvider(t)
	ctx := t.Context()
	suite := t // sandboxes live until the whole suite ends

	var sb sandbox.Sandbox
	if !t.Run("create", func(t *testing.T) {
		id := NewID("sbt")
		var progress []sandbox.Progress
		var err error
		sb, err = p.Create(ctx, id, spec, func(pr sandbox.Progress) { progress = append(progress, pr) })
		if err != nil {
			t.Fatalf("Create(%s): %v", id, err)
		}
		suite.Cleanup(func() { _ = p.Delete(context.Background(), id) })
		if sb.ID() != id {
			t.Errorf("ID() = %q, want %q", sb.ID(), id)
		}
		if sb.Owner() != spec.Owner {
			t.Errorf("Owner() = %q, want %q", sb.Owner(), spec.Owner)
		}
		if sb.Kind() < spec.Kind {
			t.Errorf("Kind() = %v, want at least %v", sb.Kind(), spec.Kind)
		}
		for i, pr := range progress {
			if pr.Percent < 0 || pr.Percent > 100 {
				t.Errorf("progress %d = %+v: percent out of 0..100", i, pr)
			}
		}
		if !listed(t, p, id) {
			t.Errorf("List() does not contain the new sandbox %s", id)
		}
	}) {
		t.FailNow()
	}

	t.Run("terminal echo", func(t *testing.T) {
		term := OpenTerminal(t, sb, 80, 24)
		marker := NewID("hi")
		// The quotes keep the echoed command line from matching: only the
		// command's output contains the marker as one word.
		typeLine(t, term, "echo "+quoteSplit(marker))
		term.Expect(t, marker)
	})

	t.Run("terminal size and resize", func(t *testing.T) {
		term := OpenTerminal(t, sb, 87, 29)
		typeLine(t, term, `echo "sz=$(stty size)"`)
		term.Expect(t, "sz=29 87")
		if err := term.Resize(91, 33); err != nil {
			t.Fatalf("Resize(91, 33): %v", err)
		}
		typeLine(t, term, `echo "sz=$(stty size)"`)
		term.Expect(t, "sz=33 91")
		if err := term.Resize(120, 40); err != nil {
			t.Fatalf("Resize(120, 40): %v", err)
		}
		typeLine(t, term, `echo "sz=$(stty size)"`)
		term.Expect(t, "sz=40 120")
	})

	t.Run("terminal close ends reads", func(t *testing.T) {
		term := OpenTerminal(t, sb, 80, 24)
		if err := term.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case <-term.Done():
		case <-time.After(waitLong):
			t.Fatalf("Read still blocked %v after Close", waitLong)
		}
	})

	t.Run("terminal ends with the shell", func(t *testing.T) {
		term := OpenTerminal(t, sb, 80, 24)
		typeLine(t, term, "exit 7")
		select {
		case <-term.Done():
		case <-time.After(waitLong):
			t.Fatalf("Read still blocked %v after the shell exited; output:\n%s", waitLong, term.Output())
		}
		w, ok := term.Terminal.(sandbox.ExitWaiter)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(t.Context(), waitLong)
		defer cancel()
		if code, err := w.Wait(ctx); err != nil || code != 7 {
			t.Errorf("Wait() = %d, %v; want 7 (the shell's exit status)", code, err)
		}
	})

	t.Run("exec", func(t *testing.T) {
		tests := []struct {
			script     string
			wantOut    string
			wantErr    string
			wantStatus int
		}{
			{script: "true", wantStatus: 0},
			{script: "exit 3", wantStatus: 3},
			{script: "echo out; echo err >&2", wantOut: "out\n", wantErr: "err\n"},
			{script: "printf 'a b'; exit 42", wantOut: "a b", wantStatus: 42},
			{script: "no-such-command-kubelab", wantStatus: 127, wantErr: "no-such-command-kubelab"},
		}
		for _, tt := range tests {
			res, err := sb.Exec(ctx, tt.script)
			if err != nil {
				t.Errorf("Exec(%q): %v", tt.script, err)
				continue
			}
			if res.ExitCode != tt.wantStatus {
				t.Errorf("Exec(%q) exit code = %d, want %d", tt.script, res.ExitCode, tt.wantStatus)
			}
			if string(res.Stdout) != tt.wantOut {
				t.Errorf("Exec(%q) stdout = %q, want %q", tt.script, res.Stdout, tt.wantOut)
			}
			if !strings.Contains(string(res.Stderr), tt.wantErr) || (tt.wantErr == "" && len(res.Stderr) > 0) {
				t.Errorf("Exec(%q) stderr = %q, want it to contain %q", tt.script, res.Stderr, tt.wantErr)
			}
		}
	})

	t.Run("exec cancel", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := sb.Exec(cctx, "sleep 60")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Exec(sleep 60) with a 300ms deadline: err = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > waitLong {
			t.Errorf("Exec returned %v after its deadline: the command was not killed", d)
		}
	})

	var other sandbox.Sandbox
	t.Run("separate sandboxes", func(t *testing.T) {
		id := NewID("sbt")
		var err error
		other, err = p.Create(ctx, id, spec, nil)
		if err != nil {
			t.Fatalf("Create(%s): %v", id, err)
		}
		suite.Cleanup(func() { _ = p.Delete(context.Background(), id) })
		if other.ID() == sb.ID() {
			t.Fatalf("two sandboxes share ID %s", sb.ID())
		}
		name := NewID("marker")
		mustExec(t, sb, fmt.Sprintf(`echo here > "$HOME/%s"`, name), 0)
		mustExec(t, sb, fmt.Sprintf(`test -f "$HOME/%s"`, name), 0)
		mustExec(t, other, fmt.Sprintf(`test -e "$HOME/%s"`, name), 1)

		term := OpenTerminal(t, other, 80, 24)
		typeLine(t, term, fmt.Sprintf(`test -e "$HOME/%s" && echo "seen=""yes" || echo "seen=""no"`, name))
		term.Expect(t, "seen=no")
	})

	t.Run("delete", func(t *testing.T) {
		if other == nil {
			t.Skip("no second sandbox")
		}
		id := other.ID()
		if err := p.Delete(ctx, id); err != nil {
			t.Fatalf("Delete(%s): %v", id, err)
		}
		if listed(t, p, id) {
			t.Errorf("List() still contains %s after Delete", id)
		}
		if err := p.Delete(ctx, id); err != nil {
			t.Errorf("second Delete(%s) = %v, want nil", id, err)
		}
		if res, err := other.Exec(ctx, "true"); err == nil && res.ExitCode == 0 {
			t.Errorf("Exec in deleted sandbox %s succeeded", id)
		}
		if !listed(t, p, sb.ID()) {
			t.Errorf("Delete(%s) also removed %s from List()", id, sb.ID())
		}
	})
}

// NewID returns prefix-<16 random hex digits>.
func NewID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// quoteSplit returns s as shell words that print s but do not contain it,
// so a terminal's echo of the command line does not look like its output.
func quoteSplit(s string) string {
	i := len(s) / 2
	return s[:i] + "''" + s[i:]
}

func typeLine(t *testing.T, term sandbox.Terminal, line string) {
	t.Helper()
	if _, err := io.WriteString(term, line+"\r"); err != nil {
		t.Fatalf("type %q: %v", line, err)
	}
}

func mustExec(t *testing.T, sb sandbox.Sandbox, script string, want int) {
	t.Helper()
	res, err := sb.Exec(t.Context(), script)
	if err != nil {
		t.Fatalf("Exec(%q) in %s: %v", script, sb.ID(), err)
	}
	if res.ExitCode != want {
		t.Fatalf("Exec(%q) in %s: exit code %d, want %d (stderr %q)", script, sb.ID(), res.ExitCode, want, res.Stderr)
	}
}

func listed(t *testing.T, p sandbox.Provider, id string) bool {
	t.Helper()
	all, err := p.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, sb := range all {
		if sb.ID() == id {
			return true
		}
	}
	return false
}

// Terminal is an open sandbox.Terminal whose output a goroutine collects,
// so a test can wait for text to appear without blocking on Read.
type Terminal struct {
	sandbox.Terminal

	mu     sync.Mutex
	out    bytes.Buffer
	err    error
	notify chan struct{} // closed and replaced when output arrives
	done   chan struct{} // closed when Read returned an error
}

// OpenTerminal opens a terminal of cols x rows in sb and starts collecting
// its output; the terminal is closed when the test ends.
func OpenTerminal(t *testing.T, sb sandbox.Sandbox, cols, rows uint16) *Terminal {
	t.Helper()
	raw, err := sb.OpenTerminal(t.Context(), cols, rows)
	if err != nil {
		t.Fatalf("OpenTerminal in %s: %v", sb.ID(), err)
	}
	term := &Terminal{Terminal: raw, notify: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { _ = raw.Close() })
	go term.collect()
	return term
}

func (tt *Terminal) collect() {
	buf := make([]byte, 32<<10)
	for {
		n, err := tt.Terminal.Read(buf)
		tt.mu.Lock()
		tt.out.Write(buf[:n])
		if err != nil {
			tt.err = err
		}
		close(tt.notify)
		tt.notify = make(chan struct{})
		tt.mu.Unlock()
		if err != nil {
			close(tt.done)
			return
		}
	}
}

// Done is closed once Read has returned an error (the terminal ended).
func (tt *Terminal) Done() <-chan struct{} { return tt.done }

// Output returns everything read so far.
func (tt *Terminal) Output() string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.out.String()
}

// Expect waits until the output contains want, and fails the test if it
// does not within 10 seconds or the terminal ends first.
func (tt *Terminal) Expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(waitLong)
	for {
		tt.mu.Lock()
		got, err, notify := tt.out.String(), tt.err, tt.notify
		tt.mu.Unlock()
		if strings.Contains(got, want) {
			return
		}
		if err != nil {
			t.Fatalf("terminal ended (%v) before printing %q; output:\n%s", err, want, got)
		}
		select {
		case <-notify:
		case <-deadline:
			t.Fatalf("terminal did not print %q within %v; output:\n%s", want, waitLong, got)
		}
	}
}
