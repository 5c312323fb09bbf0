package sandbox_test

import (
	"context"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/sandboxtest"
)

// memRegistry is an in-memory sandbox.Registry.
type memRegistry struct {
	mu   sync.Mutex
	recs map[string]sandbox.Record
}

func newMemRegistry(recs ...sandbox.Record) *memRegistry {
	r := &memRegistry{recs: map[string]sandbox.Record{}}
	for _, rec := range recs {
		r.recs[rec.ID] = rec
	}
	return r
}

func (r *memRegistry) SaveSandbox(_ context.Context, rec sandbox.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs[rec.ID] = rec
	return nil
}

func (r *memRegistry) DeleteSandbox(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.recs, id)
	return nil
}

func (r *memRegistry) Sandboxes(context.Context) ([]sandbox.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sandbox.Record
	for _, rec := range r.recs {
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (r *memRegistry) get(id string) (sandbox.Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.recs[id]
	return rec, ok
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRecordsFollowTheSandbox(t *testing.T) {
	t.Parallel()
	reg := newMemRegistry()
	m := sandbox.NewManager(&sandboxtest.Fake{Durable: true}, sandbox.ManagerOptions{Registry: reg})
	sb, err := m.Acquire(t.Context(), sandbox.Spec{Owner: "ada", Kind: sandbox.KindDocker, Images: []string{"kubelab/hello:v1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := reg.get(sb.ID())
	if !ok || rec.Owner != "ada" || rec.State != sandbox.RecordReady || rec.Spec.Kind != sandbox.KindDocker || !slices.Equal(rec.Spec.Images, []string{"kubelab/hello:v1"}) {
		t.Fatalf("record after creation: %+v (found %v)", rec, ok)
	}
	if err := m.Release(t.Context(), "ada"); err != nil {
		t.Fatal(err)
	}
	if _, ok := reg.get(sb.ID()); ok {
		t.Fatal("the record outlived the sandbox")
	}

	failing := sandbox.NewManager(&sandboxtest.Fake{Durable: true, CreateErr: context.DeadlineExceeded}, sandbox.ManagerOptions{Registry: reg})
	if _, err := failing.Acquire(t.Context(), sandbox.Spec{Owner: "bob", Kind: sandbox.KindShell}, nil); err == nil {
		t.Fatal("want an error")
	}
	if recs, _ := reg.Sandboxes(t.Context()); len(recs) != 0 {
		t.Fatalf("a failed creation left records: %+v", recs)
	}
}

func TestReconcileAdoptsOwnedAndDeletesOrphans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fake := &sandboxtest.Fake{Durable: true}
	// What an earlier run left: a learner's sandbox, a warm one, an orphan
	// (no record), one whose creation never finished, one whose deletion
	// never finished (its workstation may be gone already), and a record
	// whose sandbox is gone.
	// and one of another server on the same host (another ID prefix)
	for _, id := range []string{"kl-owned", "kl-warm", "kl-orphan", "kl-halfway", "kl-deleting", "other-f00d"} {
		if _, err := fake.Create(ctx, id, sandbox.Spec{Kind: sandbox.KindShell}, nil); err != nil {
			t.Fatal(err)
		}
	}
	reg := newMemRegistry(
		sandbox.Record{ID: "kl-owned", Owner: "ada", State: sandbox.RecordReady, Spec: sandbox.Spec{Kind: sandbox.KindShell}},
		sandbox.Record{ID: "kl-warm", State: sandbox.RecordReady, Spec: sandbox.Spec{Kind: sandbox.KindShell}},
		sandbox.Record{ID: "kl-halfway", Owner: "bob", State: sandbox.RecordCreating},
		sandbox.Record{ID: "kl-deleting", Owner: "dee", State: sandbox.RecordDeleting, Spec: sandbox.Spec{Kind: sandbox.KindShell}},
		sandbox.Record{ID: "kl-gone", Owner: "cy", State: sandbox.RecordReady},
	)
	m := sandbox.NewManager(fake, sandbox.ManagerOptions{Registry: reg, WarmPool: 1, WarmSpec: sandbox.Spec{Kind: sandbox.KindShell}, IDPrefix: "kl-"})
	adopted, deleted, err := m.Reconcile(ctx)
	if err != nil || adopted != 2 || deleted != 3 {
		t.Fatalf("Reconcile = %d adopted, %d deleted, %v; want 2, 3, nil", adopted, deleted, err)
	}
	if sb, ok := m.Lookup("ada"); !ok || sb.ID() != "kl-owned" {
		t.Fatalf("ada should get kl-owned back, got %v %v", sb, ok)
	}
	if _, ok := m.Lookup("bob"); ok {
		t.Fatal("a half-made sandbox must not be adopted")
	}
	if _, ok := m.Lookup("dee"); ok {
		t.Fatal("a half-deleted sandbox must not be adopted")
	}
	if got := fake.Deletes(); !slices.Equal(sortStrings(got), []string{"kl-deleting", "kl-halfway", "kl-orphan"}) {
		t.Fatalf("deleted %v, want the orphan, the half-made and the half-deleted one (not the other server's)", got)
	}
	recs, _ := reg.Sandboxes(ctx)
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{"kl-owned", "kl-warm"}) {
		t.Fatalf("records after reconcile: %v", ids)
	}
	if s := m.Stats(); s.Warm != 1 {
		t.Fatalf("the warm sandbox should be back in the pool: %+v", s)
	}
}

func sortStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestWarmPoolHandsOutAtOnceAndRefills(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	fake := &sandboxtest.Fake{Durable: true, Block: block}
	reg := newMemRegistry()
	m := sandbox.NewManager(fake, sandbox.ManagerOptions{Registry: reg, WarmPool: 1, WarmSpec: sandbox.Spec{Kind: sandbox.KindDocker}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	defer m.Shutdown(context.Background())

	eventually(t, "a warm creation to start", func() bool { return m.Stats().Creating == 1 })
	close(block) // creations finish from now on
	eventually(t, "the pool to fill", func() bool { return m.Stats().Warm == 1 })

	rec := newRecorder()
	sb, err := m.Acquire(t.Context(), sandbox.Spec{Owner: "ada", Kind: sandbox.KindShell}, rec.report)
	if err != nil {
		t.Fatal(err)
	}
	if fake.Creates() != 1 && fake.Creates() != 2 {
		t.Fatalf("creates = %d", fake.Creates())
	}
	if got := rec.stages(); !slices.Equal(got, []string{"ready"}) {
		t.Errorf("a warm hand-out reports only ready, got %v", got)
	}
	if r, _ := reg.get(sb.ID()); r.Owner != "ada" {
		t.Errorf("the record of a handed-out sandbox names its owner, got %+v", r)
	}
	eventually(t, "the pool to refill", func() bool { return m.Stats().Warm == 1 && fake.Creates() == 2 })

	// A lesson needing more than the warm spec grows the handed-out sandbox.
	sb2, err := m.Acquire(t.Context(), sandbox.Spec{Owner: "bob", Kind: sandbox.KindKubernetes}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sb2.Kind() != sandbox.KindKubernetes || fake.Grows() != 1 {
		t.Fatalf("bob's sandbox: kind %v, grows %d", sb2.Kind(), fake.Grows())
	}
}

func TestWarmPoolRespectsQuota(t *testing.T) {
	t.Parallel()
	fake := &sandboxtest.Fake{Durable: true}
	m := sandbox.NewManager(fake, sandbox.ManagerOptions{MaxSandboxes: 2, WarmPool: 5, WarmSpec: sandbox.Spec{Kind: sandbox.KindShell}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	defer m.Shutdown(context.Background())
	eventually(t, "the pool to fill up to the cap", func() bool { return m.Stats().Warm == 2 })
	for _, owner := range []string{"a", "b"} {
		if _, err := m.Acquire(t.Context(), sandbox.Spec{Owner: owner, Kind: sandbox.KindShell}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Acquire(t.Context(), sandbox.Spec{Owner: "c", Kind: sandbox.KindShell}, nil); err == nil {
		t.Fatal("a third sandbox must be refused at a cap of 2")
	}
	if s := m.Stats(); s.Live != 2 || s.Warm != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

// TestSweepOrphans: a sandbox that appears after Reconcile with this
// Manager's prefix (a killed predecessor's creation finishing late) is
// deleted; the Manager's own, and other prefixes', are left alone.
func TestSweepOrphans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fake := &sandboxtest.Fake{Durable: true}
	m := sandbox.NewManager(fake, sandbox.ManagerOptions{IDPrefix: "kl-ab12-"})
	own, err := m.Acquire(ctx, sandbox.Spec{Owner: "ada", Kind: sandbox.KindShell}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"kl-ab12-late", "kl-ffff-other"} {
		if _, err := fake.Create(ctx, id, sandbox.Spec{Kind: sandbox.KindShell}, nil); err != nil {
			t.Fatal(err)
		}
	}
	n, err := m.SweepOrphans(ctx)
	if err != nil || n != 1 {
		t.Fatalf("SweepOrphans = %d, %v; want 1, nil", n, err)
	}
	if got := fake.Deletes(); !slices.Equal(got, []string{"kl-ab12-late"}) {
		t.Fatalf("deleted %v, want only kl-ab12-late (not %s, not the other prefix)", got, own.ID())
	}
}
