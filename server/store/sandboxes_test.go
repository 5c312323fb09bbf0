package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestSandboxLifecycle(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	clk := withClock(db, t0)
	ctx := t.Context()

	a := SandboxRecord{ID: "sb-a", Owner: "ada", Provider: "kind", Kind: 3, State: SandboxCreating,
		Detail: `{"workstation":"kubelab-ws-a","network":"kubelab-a"}`, CreatedAt: t0.Add(time.Minute), LastUsed: t0.Add(2 * time.Minute)}
	pool := SandboxRecord{ID: "sb-pool", Provider: "kind", Kind: 2, State: SandboxReady} // warm pool: no owner, no times
	if err := db.PutSandbox(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSandbox(ctx, pool); err != nil {
		t.Fatal(err)
	}

	got, err := db.Sandbox(ctx, "sb-a")
	if err != nil {
		t.Fatal(err)
	}
	if got != a {
		t.Errorf("Sandbox(sb-a) = %+v, want %+v", got, a)
	}
	// Zero times on insert: created now, last used when created.
	wantPool := pool
	wantPool.CreatedAt, wantPool.LastUsed = t0, t0
	if got, err := db.Sandbox(ctx, "sb-pool"); err != nil || got != wantPool {
		t.Errorf("Sandbox(sb-pool) = %+v, %v; want %+v", got, err, wantPool)
	}

	// Ordered by creation: the pool sandbox was created first (t0).
	all, err := db.Sandboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []SandboxRecord{wantPool, a}; !reflect.DeepEqual(all, want) {
		t.Errorf("Sandboxes =\n %+v\nwant\n %+v", all, want)
	}

	// Upsert: hand the pool sandbox to a learner, changing only what the
	// Manager knows; zero times keep the stored ones.
	clk.Set(t0.Add(time.Hour))
	handed := SandboxRecord{ID: "sb-pool", Owner: "bob", Provider: "kind", Kind: 3, State: SandboxReady, Detail: `{"cluster":"kubelab-bob"}`}
	if err := db.PutSandbox(ctx, handed); err != nil {
		t.Fatal(err)
	}
	wantHanded := handed
	wantHanded.CreatedAt, wantHanded.LastUsed = t0, t0
	if got, err := db.Sandbox(ctx, "sb-pool"); err != nil || got != wantHanded {
		t.Errorf("after upsert Sandbox(sb-pool) = %+v, %v; want %+v", got, err, wantHanded)
	}
	used := handed
	used.LastUsed = t0.Add(3 * time.Hour)
	if err := db.PutSandbox(ctx, used); err != nil {
		t.Fatal(err)
	}
	wantUsed := used
	wantUsed.CreatedAt = t0
	if got, err := db.Sandbox(ctx, "sb-pool"); err != nil || got != wantUsed {
		t.Errorf("after touching Sandbox(sb-pool) = %+v, %v; want %+v", got, err, wantUsed)
	}
	// An extension sets the end of life; a later write without one keeps it.
	extended := used
	extended.ExpiresAt = t0.Add(5 * time.Hour)
	if err := db.PutSandbox(ctx, extended); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSandbox(ctx, used); err != nil {
		t.Fatal(err)
	}
	wantExtended := wantUsed
	wantExtended.ExpiresAt = t0.Add(5 * time.Hour)
	if got, err := db.Sandbox(ctx, "sb-pool"); err != nil || got != wantExtended {
		t.Errorf("after extending Sandbox(sb-pool) = %+v, %v; want %+v", got, err, wantExtended)
	}

	if err := db.DeleteSandbox(ctx, "sb-a"); err != nil {
		t.Fatal(err)
	}
	_, err = db.Sandbox(ctx, "sb-a")
	if !errors.Is(err, ErrNotFound) || err.Error() != "sandbox sb-a: not found" {
		t.Errorf("Sandbox of a deleted record: err = %v, want ErrNotFound \"sandbox sb-a: not found\"", err)
	}
	if err := db.DeleteSandbox(ctx, "sb-a"); err != nil {
		t.Errorf("deleting again: %v, want nil", err)
	}
	all, err = db.Sandboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []SandboxRecord{wantExtended}; !reflect.DeepEqual(all, want) {
		t.Errorf("Sandboxes after delete = %+v, want %+v", all, want)
	}
}

func TestSandboxesEmpty(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	all, err := db.Sandboxes(t.Context())
	if err != nil || all == nil || len(all) != 0 {
		t.Errorf("Sandboxes of a fresh store = %v, %v; want an empty list and no error", all, err)
	}
}

func TestPutSandboxInvalid(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ok := SandboxRecord{ID: "sb", Provider: "shell", Kind: 1, State: SandboxReady}
	tests := []struct {
		name   string
		modify func(*SandboxRecord)
		want   string
	}{
		{"no ID", func(r *SandboxRecord) { r.ID = "" }, "put sandbox : invalid: empty sandbox ID"},
		{"no provider", func(r *SandboxRecord) { r.Provider = "" }, "put sandbox sb: invalid: empty provider"},
		{"unknown state", func(r *SandboxRecord) { r.State = "running" }, `put sandbox sb: invalid: state "running", want creating, ready or deleting`},
		{"detail not JSON", func(r *SandboxRecord) { r.Detail = "home=/tmp" }, "put sandbox sb: invalid: detail is not valid JSON"},
		{"time out of range", func(r *SandboxRecord) { r.LastUsed = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) }, "put sandbox sb: invalid: last_used 1600-01-01T00:00:00Z is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ok
			tt.modify(&r)
			err := db.PutSandbox(t.Context(), r)
			if !errors.Is(err, ErrInvalid) || err.Error() != tt.want {
				t.Errorf("PutSandbox(%+v) err = %v, want ErrInvalid %q", r, err, tt.want)
			}
		})
	}
	t.Cleanup(func() {
		all, err := db.Sandboxes(context.Background()) // t.Context is done by now
		if err != nil || len(all) != 0 {
			t.Errorf("refused records: Sandboxes = %+v, %v; want none", all, err)
		}
	})
}
