package server_test

import (
	"slices"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/server"
	"kubelab/server/store"
)

func TestSandboxRegistryRoundTrip(t *testing.T) {
	t.Parallel()
	db, err := store.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	kind := server.SandboxRegistry(db, "kind")
	other := server.SandboxRegistry(db, "shell")
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	rec := sandbox.Record{ID: "kl-1", Owner: "ada", State: sandbox.RecordReady, CreatedAt: at, LastUsed: at,
		Spec: sandbox.Spec{Kind: sandbox.KindKubernetes, Images: []string{"kubelab/hello:v1"}, Workers: 2}}
	if err := kind.SaveSandbox(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if err := other.SaveSandbox(t.Context(), sandbox.Record{ID: "kl-2", State: sandbox.RecordCreating, CreatedAt: at, LastUsed: at, Spec: sandbox.Spec{Kind: sandbox.KindShell}}); err != nil {
		t.Fatal(err)
	}
	got, err := kind.Sandboxes(t.Context())
	if err != nil || len(got) != 1 {
		t.Fatalf("kind records: %+v %v", got, err)
	}
	g := got[0]
	if g.ID != "kl-1" || g.Owner != "ada" || g.State != sandbox.RecordReady || g.Spec.Kind != sandbox.KindKubernetes ||
		g.Spec.Owner != "ada" || g.Spec.Workers != 2 || !slices.Equal(g.Spec.Images, rec.Spec.Images) || !g.CreatedAt.Equal(at) {
		t.Fatalf("round trip: %+v", g)
	}
	if err := kind.DeleteSandbox(t.Context(), "kl-1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := kind.Sandboxes(t.Context()); len(got) != 0 {
		t.Fatalf("after delete: %+v", got)
	}
	if got, _ := other.Sandboxes(t.Context()); len(got) != 1 {
		t.Fatalf("another provider's records must stay: %+v", got)
	}
}
