package sandbox_test

import (
	"errors"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/sandboxtest"
)

func TestExtendPostponesTheEnd(t *testing.T) {
	t.Parallel()
	const life, by = 4 * time.Hour, time.Hour
	clk := newClock()
	m := sandbox.NewManager(&sandboxtest.Fake{}, sandbox.ManagerOptions{MaxLifetime: life, ExtendBy: by, MaxExtensions: 2, Now: clk.Now})
	if _, err := m.Extend("ada"); !errors.Is(err, sandbox.ErrNoSandbox) {
		t.Fatalf("Extend without a sandbox = %v, want ErrNoSandbox", err)
	}
	start := clk.Now()
	if _, err := m.Acquire(t.Context(), ada, nil); err != nil {
		t.Fatal(err)
	}
	detach := m.Attach("ada")
	defer detach()
	lt, ok := m.Lifetime("ada")
	if !ok || !lt.ExpiresAt.Equal(start.Add(life)) || lt.ExtensionsLeft != 2 {
		t.Fatalf("Lifetime = %+v, %v; want expiry %v and 2 extensions left", lt, ok, start.Add(life))
	}

	clk.Advance(life - 10*time.Minute) // the page warns now; the learner extends
	lt, err := m.Extend("ada")
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(life + by); !lt.ExpiresAt.Equal(want) || lt.ExtensionsLeft != 1 {
		t.Errorf("after one extension = %+v, want expiry %v and 1 left", lt, want)
	}
	clk.Advance(20 * time.Minute) // past the original end
	if err := m.Cull(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, alive := m.Lookup("ada"); !alive {
		t.Fatal("an extended sandbox was culled at its original end")
	}
	if _, err := m.Extend("ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Extend("ada"); !errors.Is(err, sandbox.ErrNoExtension) {
		t.Fatalf("third Extend with MaxExtensions 2 = %v, want ErrNoExtension", err)
	}
	clk.Advance(2 * by) // past both extensions
	if err := m.Cull(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, alive := m.Lookup("ada"); alive {
		t.Error("sandbox alive after its extended end")
	}
}

func TestCreationRateLimit(t *testing.T) {
	t.Parallel()
	const window = time.Hour
	clk := newClock()
	m := sandbox.NewManager(&sandboxtest.Fake{}, sandbox.ManagerOptions{MaxCreationsPerOwner: 2, CreationWindow: window, Now: clk.Now})
	for i := range 2 {
		if err := m.Admit("ada"); err != nil {
			t.Fatalf("Admit before creation %d: %v", i+1, err)
		}
		if _, err := m.Acquire(t.Context(), ada, nil); err != nil {
			t.Fatal(err)
		}
		if err := m.Admit("ada"); err != nil {
			t.Errorf("Admit with a sandbox: %v", err)
		}
		if err := m.Release(t.Context(), "ada"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Minute)
	}
	_, err := m.Acquire(t.Context(), ada, nil)
	var retry *sandbox.RetryError
	if !errors.Is(err, sandbox.ErrRateLimited) || !errors.As(err, &retry) {
		t.Fatalf("third creation in the window = %v, want a RetryError wrapping ErrRateLimited", err)
	}
	if want := window - 20*time.Minute; retry.After != want {
		t.Errorf("RetryError.After = %v, want %v (when the first creation leaves the window)", retry.After, want)
	}
	if err := m.Admit("ada"); !errors.Is(err, sandbox.ErrRateLimited) {
		t.Errorf("Admit = %v, want ErrRateLimited", err)
	}
	if _, err := m.Acquire(t.Context(), bob, nil); err != nil {
		t.Errorf("another owner is limited too: %v", err)
	}
	clk.Advance(retry.After)
	if _, err := m.Acquire(t.Context(), ada, nil); err != nil {
		t.Errorf("Acquire after Retry-After: %v", err)
	}
}

func TestQuotaIsARetryError(t *testing.T) {
	t.Parallel()
	m := sandbox.NewManager(&sandboxtest.Fake{}, sandbox.ManagerOptions{MaxSandboxes: 1})
	if _, err := m.Acquire(t.Context(), ada, nil); err != nil {
		t.Fatal(err)
	}
	err := m.Admit("bob")
	var retry *sandbox.RetryError
	if !errors.Is(err, sandbox.ErrQuota) || !errors.As(err, &retry) || retry.After <= 0 {
		t.Fatalf("Admit when full = %v, want a RetryError wrapping ErrQuota with a delay", err)
	}
}

// TestExtensionSurvivesRestart: a restarted Manager adopting an extended
// sandbox keeps its end and counts the extension as used.
func TestExtensionSurvivesRestart(t *testing.T) {
	t.Parallel()
	clk := newClock()
	fake := &sandboxtest.Fake{Durable: true}
	reg := newMemRegistry()
	opts := sandbox.ManagerOptions{Registry: reg, MaxLifetime: 4 * time.Hour, ExtendBy: time.Hour, MaxExtensions: 2, Now: clk.Now}
	first := sandbox.NewManager(fake, opts)
	if _, err := first.Acquire(t.Context(), ada, nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(3 * time.Hour)
	extended, err := first.Extend("ada")
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Shutdown(t.Context()); err != nil { // a durable provider's sandboxes stay
		t.Fatal(err)
	}

	second := sandbox.NewManager(fake, opts)
	if adopted, _, err := second.Reconcile(t.Context()); err != nil || adopted != 1 {
		t.Fatalf("Reconcile = %d adopted, %v; want 1", adopted, err)
	}
	lt, ok := second.Lifetime("ada")
	if !ok || !lt.ExpiresAt.Equal(extended.ExpiresAt) || lt.ExtensionsLeft != 1 {
		t.Fatalf("after the restart: %+v, %v; want expiry %v and 1 extension left", lt, ok, extended.ExpiresAt)
	}
}
