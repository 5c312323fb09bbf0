package checker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// notYet fails until call `from`, then passes.
func notYet(from int) func(n int, script string) (string, string, int, error) {
	return func(n int, script string) (string, string, int, error) {
		if n < from {
			return "", fmt.Sprintf("not yet (%d)", n), 1, nil
		}
		return "ok\n", "", 0, nil
	}
}

func TestPollingPassesWhenTheSandboxConverges(t *testing.T) {
	t.Parallel()
	target := &fakeTarget{run: notYet(3)}
	c := Check{ID: "conv", Title: "converges", Timeout: 10 * time.Second, Spec: mustCompile(t, "command", "command: {run: ./probe}")}
	got := testEvaluator(nil).evaluate(t.Context(), target, c)
	wantResult(t, got, true, "command succeeded")
	if n := target.callCount(); n != 3 {
		t.Errorf("ran %d times, want 3", n)
	}
	if got.ID != "conv" || got.Title != "converges" || got.Waited <= 0 {
		t.Errorf("got %+v", got)
	}
}

func TestPollingReportsTheLastFailureAtTimeout(t *testing.T) {
	t.Parallel()
	target := &fakeTarget{run: notYet(1 << 30)}
	c := Check{ID: "never", Timeout: 60 * time.Millisecond, Spec: mustCompile(t, "command", "command: {run: ./probe}")}
	got := testEvaluator(nil).evaluate(t.Context(), target, c)
	n := target.callCount()
	if n < 2 {
		t.Fatalf("ran %d times, want retries until the timeout", n)
	}
	// The last completed attempt speaks, not an earlier one.
	want := fmt.Sprintf("command exited with code 1: not yet (%d)", n)
	wantResult(t, got, false, want)
}

func TestNoTimeoutEvaluatesOnce(t *testing.T) {
	t.Parallel()
	target := &fakeTarget{run: notYet(2)}
	got := testEvaluator(nil).evaluate(t.Context(), target, Check{ID: "once", Spec: mustCompile(t, "command", "command: {run: ./probe}")})
	wantResult(t, got, false, "command exited with code 1: not yet (1)")
	if n := target.callCount(); n != 1 {
		t.Errorf("ran %d times, want 1", n)
	}
}

func TestUnavailableDoesNotWait(t *testing.T) {
	t.Parallel()
	target := &fakeTarget{kubeErr: fmt.Errorf("sandbox 7: %w", ErrUnavailable)}
	c := Check{ID: "k", Timeout: time.Hour, Spec: mustCompile(t, "kube", "kube: {resource: deploy/web}")}
	got := testEvaluator(nil).evaluate(t.Context(), target, c)
	wantResult(t, got, false, "this check needs a Kubernetes cluster, and this sandbox has none")
	if got.Err == nil {
		t.Error("Result.Err is nil, want the target's error for the log")
	}
	docker := Check{ID: "d", Timeout: time.Hour, Spec: mustCompile(t, "docker", "docker: {container: web}")}
	got = testEvaluator(nil).evaluate(t.Context(), &fakeTarget{}, docker)
	wantResult(t, got, false, "this check needs a Docker engine, and this sandbox has none")
}

// An attempt cut short by the deadline does not hide what an earlier,
// complete attempt found.
type slowSecondTarget struct {
	fakeTarget
	mu sync.Mutex
	n  int
}

func (s *slowSecondTarget) Run(ctx context.Context, script string) ([]byte, []byte, int, error) {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	if n == 1 {
		return nil, []byte("replicas: 2 of 3"), 1, nil
	}
	<-ctx.Done()
	return nil, nil, -1, ctx.Err()
}

func TestInterruptedAttemptKeepsTheEarlierMessage(t *testing.T) {
	t.Parallel()
	c := Check{ID: "slow", Timeout: 80 * time.Millisecond, Spec: mustCompile(t, "command", "command: {run: ./probe}")}
	got := testEvaluator(nil).evaluate(t.Context(), &slowSecondTarget{}, c)
	wantResult(t, got, false, "command exited with code 1: replicas: 2 of 3")
}

func TestCancelStopsWaiting(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	target := &fakeTarget{run: func(n int, script string) (string, string, int, error) {
		if n == 2 {
			cancel()
		}
		return "", "no", 1, nil
	}}
	c := Check{ID: "c", Timeout: time.Hour, Spec: mustCompile(t, "command", "command: {run: ./probe}")}
	got := testEvaluator(nil).evaluate(ctx, target, c)
	wantResult(t, got, false, "command exited with code 1: no")
	if n := target.callCount(); n != 2 {
		t.Errorf("ran %d times after cancel, want 2", n)
	}
}

func TestNilSpec(t *testing.T) {
	t.Parallel()
	got := Evaluate(t.Context(), &fakeTarget{}, Check{ID: "x"})
	wantResult(t, got, false, "this check cannot be evaluated: it was not compiled")
	if got.Err == nil {
		t.Error("Result.Err is nil")
	}
}

// barrierTarget makes every Run wait until n runs have started, so checks
// that ran one after another would never finish.
type barrierTarget struct {
	fakeTarget
	wg *sync.WaitGroup
}

func (b *barrierTarget) Run(ctx context.Context, script string) ([]byte, []byte, int, error) {
	b.wg.Done()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, nil, -1, ctx.Err()
	}
	if script == "fail" {
		return nil, []byte("failed " + script), 1, nil
	}
	return []byte(script), nil, 0, nil
}

func TestEvaluateAllRunsConcurrentlyInOrder(t *testing.T) {
	t.Parallel()
	scripts := []string{"a", "fail", "c", "d"}
	var wg sync.WaitGroup
	wg.Add(len(scripts))
	target := &barrierTarget{wg: &wg}
	var cs []Check
	for _, s := range scripts {
		cs = append(cs, Check{ID: s, Spec: mustCompile(t, "command", fmt.Sprintf("command: {run: %s, stdout: '^%s$'}", s, s))})
	}
	got := EvaluateAll(t.Context(), target, cs)
	if len(got) != len(scripts) {
		t.Fatalf("got %d results", len(got))
	}
	for i, s := range scripts {
		if got[i].ID != s {
			t.Errorf("result %d is %q, want %q", i, got[i].ID, s)
		}
		if s == "fail" {
			wantResult(t, got[i], false, "command exited with code 1: failed fail")
		} else {
			wantResult(t, got[i], true, fmt.Sprintf("command succeeded and its output matched ^%s$", s))
		}
	}
}
