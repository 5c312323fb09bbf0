package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// LoginLimit is what the server remembers of failed sign-ins for one key
// (an account or a client address): the recent failures and the end of a
// lockout.
type LoginLimit struct {
	Key         string
	Failures    []time.Time // oldest first
	LockedUntil time.Time   // zero: not locked
}

// LoginLimits returns every key's login limit.
func (db *DB) LoginLimits(ctx context.Context) ([]LoginLimit, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT key, failures, locked_until FROM login_limits ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("read login limits: %w", err)
	}
	defer rows.Close()
	var out []LoginLimit
	for rows.Next() {
		var l LoginLimit
		var failures string
		var locked int64
		if err := rows.Scan(&l.Key, &failures, &locked); err != nil {
			return nil, fmt.Errorf("read login limits: %w", err)
		}
		for _, f := range strings.Fields(failures) {
			ns, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("read login limits: key %q: bad failure time %q", l.Key, f)
			}
			l.Failures = append(l.Failures, time.Unix(0, ns).UTC())
		}
		if locked != 0 {
			l.LockedUntil = time.Unix(0, locked).UTC()
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read login limits: %w", err)
	}
	return out, nil
}

// SaveLoginLimit records l, replacing what its key had; a limit with no
// failures and no lockout removes the key's row.
func (db *DB) SaveLoginLimit(ctx context.Context, l LoginLimit) error {
	if l.Key == "" {
		return fmt.Errorf("save login limit: %w: empty key", ErrInvalid)
	}
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if len(l.Failures) == 0 && l.LockedUntil.IsZero() {
			_, err := tx.ExecContext(ctx, `DELETE FROM login_limits WHERE key = ?`, l.Key)
			return err
		}
		times := make([]string, len(l.Failures))
		for i, f := range l.Failures {
			times[i] = strconv.FormatInt(f.UnixNano(), 10)
		}
		var locked int64
		if !l.LockedUntil.IsZero() {
			locked = l.LockedUntil.UnixNano()
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO login_limits (key, failures, locked_until) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until`,
			l.Key, strings.Join(times, " "), locked)
		return err
	})
	if err != nil {
		return fmt.Errorf("save login limit %s: %w", l.Key, err)
	}
	return nil
}
