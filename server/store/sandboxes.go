package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Sandbox states as stored.
const (
	SandboxCreating = "creating"
	SandboxReady    = "ready"
	SandboxDeleting = "deleting"
)

// SandboxRecord is a sandbox the Manager created, kept so that a restarted
// server can reconcile what it finds with what it made.
type SandboxRecord struct {
	ID, Owner, Provider string // Owner is "" for a warm-pool sandbox not yet handed out
	Kind                int    // sandbox.Kind
	State               string // SandboxCreating, SandboxReady or SandboxDeleting
	Detail              string // provider-specific JSON, or ""
	CreatedAt, LastUsed time.Time
	// ExpiresAt is when the sandbox is deleted however busy it is; zero
	// leaves it to the server's maximum lifetime after CreatedAt.
	ExpiresAt time.Time
}

func checkSandbox(r SandboxRecord) error {
	switch {
	case r.ID == "":
		return fmt.Errorf("%w: empty sandbox ID", ErrInvalid)
	case r.Provider == "":
		return fmt.Errorf("%w: empty provider", ErrInvalid)
	case r.State != SandboxCreating && r.State != SandboxReady && r.State != SandboxDeleting:
		return fmt.Errorf("%w: state %q, want %s, %s or %s", ErrInvalid, r.State, SandboxCreating, SandboxReady, SandboxDeleting)
	case r.Detail != "" && !json.Valid([]byte(r.Detail)):
		return fmt.Errorf("%w: detail is not valid JSON", ErrInvalid)
	}
	if err := checkTime("created_at", r.CreatedAt); err != nil {
		return err
	}
	if err := checkTime("last_used", r.LastUsed); err != nil {
		return err
	}
	return checkTime("expires_at", r.ExpiresAt)
}

// PutSandbox inserts r, or replaces the record with the same ID. On insert a
// zero CreatedAt means now and a zero LastUsed means CreatedAt; on replace a
// zero CreatedAt, LastUsed or ExpiresAt keeps the stored value, so a caller
// changing only the state need not know them.
func (db *DB) PutSandbox(ctx context.Context, r SandboxRecord) error {
	if err := checkSandbox(r); err != nil {
		return fmt.Errorf("put sandbox %s: %w", r.ID, err)
	}
	now := db.nowUTC().UnixNano()
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO sandboxes (id, owner, provider, kind, state, detail, created_at, last_used, expires_at)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, coalesce(?7, ?9), coalesce(?8, ?7, ?9), ?10)
			ON CONFLICT (id) DO UPDATE SET
				owner      = excluded.owner,
				provider   = excluded.provider,
				kind       = excluded.kind,
				state      = excluded.state,
				detail     = excluded.detail,
				created_at = coalesce(?7, created_at),
				last_used  = coalesce(?8, last_used),
				expires_at = coalesce(?10, expires_at)`,
			r.ID, r.Owner, r.Provider, r.Kind, r.State, r.Detail, nanos(r.CreatedAt), nanos(r.LastUsed), now, nanos(r.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("put sandbox %s: %w", r.ID, err)
	}
	return nil
}

const sandboxColumns = `id, owner, provider, kind, state, detail, created_at, last_used, expires_at`

func scanSandbox(s interface{ Scan(...any) error }) (SandboxRecord, error) {
	var (
		r                   SandboxRecord
		createdAt, lastUsed sql.NullInt64
		expiresAt           sql.NullInt64
	)
	if err := s.Scan(&r.ID, &r.Owner, &r.Provider, &r.Kind, &r.State, &r.Detail, &createdAt, &lastUsed, &expiresAt); err != nil {
		return SandboxRecord{}, err
	}
	r.CreatedAt, r.LastUsed, r.ExpiresAt = fromNanos(createdAt), fromNanos(lastUsed), fromNanos(expiresAt)
	return r, nil
}

// Sandbox returns the record with this ID, or an error wrapping ErrNotFound.
func (db *DB) Sandbox(ctx context.Context, id string) (SandboxRecord, error) {
	r, err := scanSandbox(db.read.QueryRowContext(ctx,
		`SELECT `+sandboxColumns+` FROM sandboxes WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return SandboxRecord{}, fmt.Errorf("sandbox %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return SandboxRecord{}, fmt.Errorf("sandbox %s: %w", id, err)
	}
	return r, nil
}

// Sandboxes returns every record, oldest first (by CreatedAt, then ID).
func (db *DB) Sandboxes(ctx context.Context) ([]SandboxRecord, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT `+sandboxColumns+` FROM sandboxes ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	defer rows.Close()
	rs := []SandboxRecord{}
	for rows.Next() {
		r, err := scanSandbox(rows)
		if err != nil {
			return nil, fmt.Errorf("list sandboxes: %w", err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	return rs, nil
}

// DeleteSandbox removes the record with this ID. Deleting a record that is
// not there is not an error: reconcile may delete what a crashed run already
// half-deleted.
func (db *DB) DeleteSandbox(ctx context.Context, id string) error {
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sandboxes WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete sandbox %s: %w", id, err)
	}
	return nil
}
