package server

import (
	"context"
	"fmt"

	"kubelab/sandbox"
	"kubelab/server/store"
)

// SandboxRegistry keeps the Manager's sandbox records in the store, so a
// restarted server adopts its sandboxes and removes orphans.
func SandboxRegistry(db *store.DB, provider string) sandbox.Registry {
	return registry{db: db, provider: provider}
}

type registry struct {
	db       *store.DB
	provider string
}

func (r registry) SaveSandbox(ctx context.Context, rec sandbox.Record) error {
	detail, err := sandbox.EncodeSpec(rec.Spec)
	if err != nil {
		return err
	}
	return r.db.PutSandbox(ctx, store.SandboxRecord{
		ID: rec.ID, Owner: rec.Owner, Provider: r.provider, Kind: int(rec.Spec.Kind),
		State: rec.State, Detail: detail, CreatedAt: rec.CreatedAt, LastUsed: rec.LastUsed,
		ExpiresAt: rec.ExpiresAt,
	})
}

func (r registry) DeleteSandbox(ctx context.Context, id string) error {
	return r.db.DeleteSandbox(ctx, id)
}

// Sandboxes returns the records of this provider only: a server started
// with another provider leaves the others' records alone.
func (r registry) Sandboxes(ctx context.Context) ([]sandbox.Record, error) {
	rows, err := r.db.Sandboxes(ctx)
	if err != nil {
		return nil, err
	}
	var out []sandbox.Record
	for _, row := range rows {
		if row.Provider != r.provider {
			continue
		}
		spec, err := sandbox.DecodeSpec(row.Owner, row.Detail)
		if err != nil {
			return nil, fmt.Errorf("sandbox record %s: %w", row.ID, err)
		}
		out = append(out, sandbox.Record{
			ID: row.ID, Owner: row.Owner, State: row.State, Spec: spec,
			CreatedAt: row.CreatedAt, LastUsed: row.LastUsed, ExpiresAt: row.ExpiresAt,
		})
	}
	return out, nil
}
