package sandbox_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/sandboxtest"
)

// clock is a fake time source for the Manager.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder collects progress; first is closed on the first report.
type recorder struct {
	mu    sync.Mutex
	got   []sandbox.Progress
	first chan struct{}
}

func newRecorder() *recorder { return &recorder{first: make(chan struct{})} }

func (r *recorder) report(p sandbox.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		close(r.first)
	}
	r.got = append(r.got, p)
}

func (r *recorder) stages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, p := range r.got {
		s = append(s, p.Stage)
	}
	return s
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

type result struct {
	sb  sandbox.Sandbox
	err error
}

func acquireAsync(m *sandbox.Manager, spec sandbox.Spec, rec *recorder) <-chan result {
	ch := make(chan result, 1)
	go func() {
		sb, err := m.Acquire(context.Background(), spec, rec.report)
		ch <- result{sb, err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire did not return")
		return result{}
	}
}

var (
	ada  = sandbox.Spec{Owner: "ada", Kind: sandbox.KindShell}
	bob  = sandbox.Spec{Owner: "bob", Kind: sandbox.KindShell}
	adaK = sandbox.Spec{Owner: "ada", Kind: sandbox.KindKubernetes, Images: []string{"kubelab/hello:v1"}}
)

func TestAcquireCreatesOncePerOwner(t *testing.T) {
	t.Parallel()
	f := &sandboxtest.Fake{}
	m := sandbox.NewManager(f, sandbox.ManagerOptions{})
	rec := newRecorder()
	a1, err := m.Acquire(t.Context(), ada, rec.report)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := m.Acquire(t.Context(), ada, nil)
	if err != nil || a2 != a1 {
		t.Fatalf("second Acquire = %v, %v; want the first sandbox %v", a2, err, a1)
	}
	b, err := m.Acquire(t.Context(), bob, nil)
	if err != nil || b == a1 {
		t.Fatalf("Acquire for bob = %v, %v; want a sandbox of his own", b, err)
	}
	if got, ok := m.Lookup("ada"); !ok || got != a1 {
		t.Errorf("Lookup(ada) = %v, %v", got, ok)
	}
	if _, ok := m.Lookup("eve"); ok {
		t.Error("Lookup(eve) found a sandbox")
	}
	if got := f.Creates(); got != 2 {
		t.Errorf("provider Create called %d times, want 2", got)
	}
	if got, want := rec.stages(), []string{"fake", "ready"}; !slices.Equal(got, want) {
		t.Errorf("progress stages = %v, want %v", got, want)
	}
	if got := m.Stats(); got != (sandbox.Stats{Live: 2}) {
		t.Errorf("Stats() = %+v, want 2 live", got)
	}
	if !strings.HasPrefix(a1.ID(), "kl-") || a1.Owner() != "ada" {
		t.Errorf("sandbox ID %q owner %q", a1.ID(), a1.Owner())
	}
}

func TestConcurrentAcquireSharesCreation(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	f := &sandboxtest.Fake{Block: block}
	m := sandbox.NewManager(f, sandbox.ManagerOptions{})
	r1, r2 := newRecorder(), newRecorder()
	c1 := acquireAsync(m, ada, r1)
	waitFor(t, r1.first, "progress of the first Acquire")
	c2 := acquireAsync(m, ada, r2)
	// The second caller joins: it is given the latest progress at once.
	waitFor(t, r2.first, "progress of the second Acquire")
	if got := m.Stats(); got != (sandbox.Stats{Creating: 1}) {
		t.Errorf("Stats() while creating = %+v, want 1 creating", got)
	}
	if _, ok := m.Lookup("ada"); ok {
		t.Error("Lookup found a sandbox still being created")
	}
	close(block)
	res1, res2 := wait(t, c1), wait(t, c2)
	if res1.err != nil || res2.err != nil {
		t.Fatalf("Acquire errors: %v, %v", res1.err, res2.err)
	}
	if res1.sb != res2.sb {
		t.Errorf("concurrent Acquires got different sandboxes %s and %s", res1.sb.ID(), res2.sb.ID())
	}
	if got := f.Creates(); got != 1 {
		t.Errorf("provider Create called %d times, want 1", got)
	}
	for i, r := range []*recorder{r1, r2} {
		if got, want := r.stages(), []string{"fake", "ready"}; !slices.Equal(got, want) {
			t.Errorf("caller %d progress stages = %v, want %v", i+1, got, want)
		}
	}
}

func TestFailedCreationCleansUp(t *testing.T) {
	t.Parallel()
	diskFull := errors.New("disk full")
	f := &sandboxtest.Fake{CreateErr: diskFull}
	m := sandbox.NewManager(f, sandbox.ManagerOptions{})
	_, err := m.Acquire(t.Context(), ada, nil)
	if !errors.Is(err, diskFull) {
		t.Fatalf("Acquire error = %v, want it to wrap %v", err, diskFull)
	}
	deleted := f.Deletes()
	if len(deleted) != 1 {
		t.Fatalf("provider Delete calls = %v, want the failed sandbox's ID once", deleted)
	}
	want := "create sandbox for ada: create fake sandbox " + deleted[0] + ": disk full"
	if err.Error() != want {
		t.Errorf("Acquire error = %q, want %q", err, want)
	}
	if got := m.Stats(); got != (sandbox.Stats{}) {
		t.Errorf("Stats() after a failure = %+v, want zero", got)
	}
	if _, err := m.Acquire(t.Context(), ada, nil); !errors.Is(err, diskFull) || f.Creates() != 2 {
		t.Errorf("retry: err %v after %d creates; want a new attempt", err, f.Creates())
	}
}

func TestQuota(t *testing.T) {
	t.Parallel()
	m := sandbox.NewManager(&sandboxtest.Fake{}, sandbox.ManagerOptions{MaxSandboxes: 1})
	if _, err := m.Acquire(t.Context(), ada, nil); err != nil {
		t.Fatal(err)
	}
	_, err := m.Acquire(t.Context(), bob, nil)
	if !errors.Is(err, sandbox.ErrQuota) {
		t.Fatalf("Acquire over the limit = %v, want ErrQuota", err)
	}
	if want := "acquire sandbox for bob: all 1 sandboxes are in use: sandbox limit reached"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	// The owner who has one still gets it.
	if _, err := m.Acquire(t.Context(), ada, nil); err != nil {
		t.Errorf("Acquire for ada at the limit: %v", err)
	}
	if err := m.Release(t.Context(), "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Acquire(t.Context(), bob, nil); err != nil {
		t.Errorf("Acquire after Release: %v", err)
	}
}

func TestGrow(t *testing.T) {
	t.Parallel()
	f := &sandboxtest.Fake{}
	m := sandbox.NewManager(f, sandbox.ManagerOptions{})
	sb, err := m.Acquire(t.Context(), ada, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	grown, err := m.Acquire(t.Context(), adaK, rec.report)
	if err != nil {
		t.Fatal(err)
	}
	if grown.ID() != sb.ID() || grown.Kind() != sandbox.KindKubernetes {
		t.Errorf("grown sandbox %s kind %v; want %s kind kubernetes", grown.ID(), grown.Kind(), sb.ID())
	}
	if got, want := rec.stages(), []string{"fake", "ready"}; !slices.Equal(got, want) {
		t.Errorf("grow progress stages = %v, want %v", got, want)
	}
	// Less than it has: no more growing.
	for _, spec := range []sandbox.Spec{ada, adaK, {Owner: "ada", Kind: sandbox.KindDocker}} {
		if _, err := m.Acquire(t.Context(), spec, nil); err != nil {
			t.Fatal(err)
		}
	}
	if f.Grows() != 1 || f.Creates() != 1 {
		t.Errorf("creates %d, grows %d; want 1 and 1", f.Creates(), f.Grows())
	}
	// A new image is more.
	more := adaK
	more.Images = []string{"kubelab/other:v2"}
	if _, err := m.Acquire(t.Context(), more, nil); err != nil || f.Grows() != 2 {
		t.Errorf("Acquire with a new image: %v, grows %d; want 2", err, f.Grows())
	}
}

func TestFailedGrowKeepsSandbox(t *testing.T) {
	t.Parallel()
	noCluster := errors.New("no cluster today")
	f := &sandboxtest.Fake{GrowErr: noCluster}
	m := sandbox.NewManager(f, sandbox.ManagerOptions{})
	sb, err := m.Acquire(t.Context(), ada, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Acquire(t.Context(), adaK, nil)
	want := "grow sandbox " + sb.ID() + " for ada: grow fake sandbox " + sb.ID() + ": no cluster today"
	if !errors.Is(err, noCluster) || err.Error() != want {
		t.Fatalf("Acquire(kubernetes) error = %v, want %q", err, want)
	}
	if got, ok := m.Lookup("ada"); !ok || got != sb || got.Kind() != sandbox.KindShell {
		t.Errorf("after a failed grow Lookup = %v, %v; want the shell sandbox", got, ok)
	}
	if len(f.Deletes()) != 0 {
		t.Errorf("a failed grow deleted %v", f.Deletes())
	}
	if got, err := m.Acquire(t.Context(), ada, nil); err != nil || got != sb {
		t.Errorf("Acquire(shell) after failed grow = %v, %v", got, err)
	}
}

func TestMaxCreatingQueues(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	f := &sandboxtest.Fake{Block: block}
	m := sandbox.NewManager(f, sandbox.ManagerOptions{MaxCreating: 1})
	ra, rb := newRecorder(), newRecorder()
	ca := acquireAsync(m, ada, ra)
	waitFor(t, ra.first, "ada's creation to start")
	cb := acquireAsync(m, bob, rb)
	waitFor(t, rb.first, "bob's progress")
	if got := rb.stages(); !slices.Equal(got, []string{"queued"}) {
		t.Errorf("bob's progress = %v, want [queued]", got)
	}
	if got := f.Creates(); got != 1 {
		t.Errorf("%d creations running, want 1", got)
	}
	if got := m.Stats(); got != (sandbox.Stats{Creating: 2}) {
		t.Errorf("Stats() = %+v, want 2 creating", got)
	}
	close(block)
	if r := wait(t, ca); r.err != nil {
		t.Fatal(r.err)
	}
	if r := wait(t, cb); r.err != nil {
		t.Fatal(r.err)
	}
	if got, want := rb.stages(), []string{"queued", "fake", "ready"}; !slices.Equal(got, want) {
		t.Errorf("bob's progress = %v, want %v", got, want)
	}
}

func TestAbandonedCreationCompletes(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	f := &sandboxtest.Fake{Block: block}
	m := sandbox.NewManager(f, sandbox.ManagerOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	rec := newRecorder()
	done := make(chan error, 1)
	go func() {
		_, err := m.Acquire(ctx, ada, rec.report)
		done <- err
	}()
	waitFor(t, rec.first, "creation to start")
	cancel()
	select {
	case err := <-done:
		if want := "acquire sandbox for ada: context canceled"; err == nil || err.Error() != want {
			t.Errorf("cancelled Acquire = %v, want %q", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled Acquire did not return")
	}
	close(block)
	sb, err := m.Acquire(t.Context(), ada, nil)
	if err != nil || f.Creates() != 1 {
		t.Fatalf("Acquire after an abandoned creation = %v, %v with %d creates; want the one sandbox", sb, err, f.Creates())
	}
	if got := rec.stages(); slices.Contains(got, "ready") {
		t.Errorf("a caller that left still got progress: %v", got)
	}
}

func TestCull(t *testing.T) {
	t.Parallel()
	const idle, life = 30 * time.Minute, 4 * time.Hour
	tests := []struct {
		name    string
		attach  bool
		touch   bool
		advance time.Duration
		culled  bool
	}{
		{name: "fresh", advance: idle - time.Second, culled: false},
		{name: "idle", advance: idle, culled: true},
		{name: "idle but attached", attach: true, advance: idle + time.Hour, culled: false},
		{name: "idle after touch", touch: true, advance: idle * 3 / 4, culled: false},
		{name: "over lifetime while attached", attach: true, advance: life, culled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			f := &sandboxtest.Fake{}
			m := sandbox.NewManager(f, sandbox.ManagerOptions{IdleTimeout: idle, MaxLifetime: life, Now: clk.Now})
			sb, err := m.Acquire(t.Context(), ada, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.attach {
				detach := m.Attach("ada")
				defer detach()
			}
			if tt.touch {
				clk.Advance(idle / 2)
				m.Touch("ada")
			}
			clk.Advance(tt.advance)
			if err := m.Cull(t.Context()); err != nil {
				t.Fatal(err)
			}
			_, alive := m.Lookup("ada")
			if alive == tt.culled {
				t.Errorf("after %v: alive = %v, want culled = %v", tt.advance, alive, tt.culled)
			}
			if got := slices.Contains(f.Deletes(), sb.ID()); got != tt.culled {
				t.Errorf("provider Delete called = %v, want %v", got, tt.culled)
			}
		})
	}
}

func TestDetachStartsIdleTime(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := sandbox.NewManager(&sandboxtest.Fake{}, sandbox.ManagerOptions{IdleTimeout: time.Minute, Now: clk.Now})
	detach := m.Attach("ada") // before the sandbox exists
	if _, err := m.Acquire(t.Context(), ada, nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	detach()
	detach() // twice is once
	if _, ok := m.Lookup("ada"); !ok {
		t.Fatal("gone")
	}
	clk.Advance(59 * time.Second)
	_ = m.Cull(t.Context())
	if _, ok := m.Lookup("ada"); !ok {
		t.Fatal("culled 59s after the terminal detached, idle timeout is 1m")
	}
	other := m.Attach("ada")
	other()
	clk.Advance(time.Minute)
	_ = m.Cull(t.Context())
	if _, ok := m.Lookup("ada"); ok {
		t.Error("still there a minute after the last detach")
	}
}

func TestRunCullsUntilCancelled(t *testing.T) {
	t.Parallel()
	clk := newClock()
	deleted := make(chan string, 1)
	f := &sandboxtest.Fake{OnDelete: func(id string) { deleted <- id }}
	m := sandbox.NewManager(f, sandbox.ManagerOptions{IdleTimeout: time.Minute, Now: clk.Now})
	sb, err := m.Acquire(t.Context(), ada, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	select {
	case id := <-deleted:
		if id != sb.ID() {
			t.Errorf("Run deleted %s, want %s", id, sb.ID())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not cull the idle sandbox")
	}
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRelease(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	f := &sandboxtest.Fake{Block: block}
	m := sandbox.NewManager(f, sandbox.ManagerOptions{})
	if err := m.Release(t.Context(), "nobody"); err != nil {
		t.Errorf("Release of an owner without a sandbox = %v", err)
	}
	rec := newRecorder()
	c := acquireAsync(m, ada, rec)
	waitFor(t, rec.first, "creation to start")
	released := make(chan error, 1)
	go func() { released <- m.Release(context.Background(), "ada") }()
	close(block) // Release waits for the creation, then deletes
	r := wait(t, c)
	if r.err != nil {
		t.Fatal(r.err)
	}
	select {
	case err := <-released:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Release did not return")
	}
	if _, ok := m.Lookup("ada"); ok {
		t.Error("Lookup finds a released sandbox")
	}
	if got := f.Deletes(); !slices.Equal(got, []string{r.sb.ID()}) {
		t.Errorf("deletes = %v, want [%s]", got, r.sb.ID())
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		durable bool
		deletes int
	}{
		{name: "ephemeral provider", durable: false, deletes: 2},
		{name: "durable provider", durable: true, deletes: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &sandboxtest.Fake{Durable: tt.durable}
			m := sandbox.NewManager(f, sandbox.ManagerOptions{})
			for _, spec := range []sandbox.Spec{ada, bob} {
				if _, err := m.Acquire(t.Context(), spec, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := len(f.Deletes()); got != tt.deletes {
				t.Errorf("deleted %d sandboxes, want %d", got, tt.deletes)
			}
			if _, err := m.Acquire(t.Context(), ada, nil); !errors.Is(err, sandbox.ErrClosed) {
				t.Errorf("Acquire after Shutdown = %v, want ErrClosed", err)
			}
			if err := m.Shutdown(t.Context()); err != nil {
				t.Errorf("second Shutdown = %v", err)
			}
		})
	}
}

func TestShutdownCancelsCreation(t *testing.T) {
	t.Parallel()
	f := &sandboxtest.Fake{Block: make(chan struct{})} // never opens
	m := sandbox.NewManager(f, sandbox.ManagerOptions{})
	rec := newRecorder()
	c := acquireAsync(m, ada, rec)
	waitFor(t, rec.first, "creation to start")
	if err := m.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := wait(t, c)
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Acquire during Shutdown = %v, want context.Canceled", r.err)
	}
	if got := len(f.Deletes()); got != 1 {
		t.Errorf("the cancelled creation was cleaned up %d times, want 1", got)
	}
}
