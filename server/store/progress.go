package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Attempt is one run of a step's checks.
type Attempt struct {
	ID      int64
	Learner string
	Lesson  string // "track/slug"
	Step    int    // from 1
	Passed  bool
	Results []byte // JSON as produced by the checker/server, stored verbatim; nil is stored as NULL
	At      time.Time
}

// StepProgress is a learner's state on one step of one lesson.
type StepProgress struct {
	Lesson     string
	Step       int
	Passed     bool
	PassedAt   time.Time // zero if not passed
	Attempts   int
	HintsShown int
	FirstSeen  time.Time
	UpdatedAt  time.Time
}

// EnsureLearner records the learner id if it is new, and in any case sets its
// last_seen to now.
func (db *DB) EnsureLearner(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("ensure learner: %w: empty learner ID", ErrInvalid)
	}
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		return ensureLearner(ctx, tx, id, db.nowUTC())
	})
	if err != nil {
		return fmt.Errorf("ensure learner %s: %w", id, err)
	}
	return nil
}

func ensureLearner(ctx context.Context, tx *sql.Tx, id string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO learners (id, created_at, last_seen) VALUES (?1, ?2, ?2)
		ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen`,
		id, now.UnixNano())
	return err
}

// checkStep validates the (learner, lesson, step) every progress write names.
func checkStep(learner, lesson string, step int) error {
	switch {
	case learner == "":
		return fmt.Errorf("%w: empty learner ID", ErrInvalid)
	case lesson == "":
		return fmt.Errorf("%w: empty lesson", ErrInvalid)
	case step < 1:
		return fmt.Errorf("%w: step %d, steps count from 1", ErrInvalid, step)
	}
	return nil
}

// RecordAttempt stores the attempt and updates the step's progress in one
// immediate transaction: attempts+1; passed, with passed_at = a.At, the first
// time it passes; a later failure never un-passes a step. An unknown learner
// is created. A zero a.At means now. FirstSeen and UpdatedAt are the store's
// clock at the time of the call. a.ID is ignored; the stored attempt's ID is
// returned. a.Results, if not nil, must be valid JSON; it is stored byte for
// byte.
func (db *DB) RecordAttempt(ctx context.Context, a Attempt) (int64, error) {
	if err := checkStep(a.Learner, a.Lesson, a.Step); err != nil {
		return 0, fmt.Errorf("record attempt: %w", err)
	}
	if a.Results != nil && !json.Valid(a.Results) {
		return 0, fmt.Errorf("record attempt %s %s step %d: %w: results are not valid JSON", a.Learner, a.Lesson, a.Step, ErrInvalid)
	}
	if err := checkTime("attempt time", a.At); err != nil {
		return 0, fmt.Errorf("record attempt %s %s step %d: %w", a.Learner, a.Lesson, a.Step, err)
	}
	now := db.nowUTC()
	at := a.At
	if at.IsZero() {
		at = now
	}
	var results any // NULL for nil, else TEXT (the column is STRICT TEXT, so not a blob)
	if a.Results != nil {
		results = string(a.Results)
	}

	var id int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if err := ensureLearner(ctx, tx, a.Learner, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			INSERT INTO attempts (learner, lesson, step, passed, results, at)
			VALUES (?, ?, ?, ?, ?, ?)`,
			a.Learner, a.Lesson, a.Step, a.Passed, results, at.UnixNano())
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		var passedAt any
		if a.Passed {
			passedAt = at.UnixNano()
		}
		// In DO UPDATE, bare column names are the stored row's values and
		// every SET expression sees the row as it was before the update.
		_, err = tx.ExecContext(ctx, `
			INSERT INTO step_progress (learner, lesson, step, passed, passed_at, attempts, hints_shown, first_seen, updated_at)
			VALUES (?1, ?2, ?3, ?4, ?5, 1, 0, ?6, ?6)
			ON CONFLICT (learner, lesson, step) DO UPDATE SET
				attempts   = attempts + 1,
				passed     = max(passed, excluded.passed),
				passed_at  = CASE WHEN passed = 0 THEN excluded.passed_at ELSE passed_at END,
				updated_at = excluded.updated_at`,
			a.Learner, a.Lesson, a.Step, a.Passed, passedAt, now.UnixNano())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("record attempt %s %s step %d: %w", a.Learner, a.Lesson, a.Step, err)
	}
	return id, nil
}

// RecordHint notes that hint index (from 0) of a step was shown. It is
// idempotent per (learner, lesson, step, index): showing the same hint again
// changes nothing. It returns the number of distinct hints shown for the
// step. An unknown learner is created.
func (db *DB) RecordHint(ctx context.Context, learner, lesson string, step, index int) (int, error) {
	if err := checkStep(learner, lesson, step); err != nil {
		return 0, fmt.Errorf("record hint: %w", err)
	}
	if index < 0 {
		return 0, fmt.Errorf("record hint %s %s step %d: %w: hint index %d, hints count from 0", learner, lesson, step, ErrInvalid, index)
	}
	t := db.nowUTC()
	now := t.UnixNano()
	var shown int
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if err := ensureLearner(ctx, tx, learner, t); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO step_progress (learner, lesson, step, first_seen, updated_at)
			VALUES (?1, ?2, ?3, ?4, ?4)
			ON CONFLICT (learner, lesson, step) DO NOTHING`,
			learner, lesson, step, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			INSERT INTO hints (learner, lesson, step, idx, at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (learner, lesson, step, idx) DO NOTHING`,
			learner, lesson, step, index, now)
		if err != nil {
			return err
		}
		added, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `
			SELECT count(*) FROM hints WHERE learner = ? AND lesson = ? AND step = ?`,
			learner, lesson, step).Scan(&shown); err != nil {
			return err
		}
		if added == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `
			UPDATE step_progress SET hints_shown = ?, updated_at = ?
			WHERE learner = ? AND lesson = ? AND step = ?`,
			shown, now, learner, lesson, step)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("record hint %s %s step %d hint %d: %w", learner, lesson, step, index, err)
	}
	return shown, nil
}

const progressColumns = `lesson, step, passed, passed_at, attempts, hints_shown, first_seen, updated_at`

// Progress is the learner's progress on every step they have touched, in
// every lesson, ordered by lesson then step. A learner with none (or an
// unknown learner) has an empty list, not an error.
func (db *DB) Progress(ctx context.Context, learner string) ([]StepProgress, error) {
	ps, err := db.queryProgress(ctx, `SELECT `+progressColumns+` FROM step_progress
		WHERE learner = ? ORDER BY lesson, step`, learner)
	if err != nil {
		return nil, fmt.Errorf("progress of %s: %w", learner, err)
	}
	return ps, nil
}

// LessonProgress is the learner's progress on the steps of one lesson they
// have touched, ordered by step. Steps never attempted and with no hint shown
// are absent.
func (db *DB) LessonProgress(ctx context.Context, learner, lesson string) ([]StepProgress, error) {
	ps, err := db.queryProgress(ctx, `SELECT `+progressColumns+` FROM step_progress
		WHERE learner = ? AND lesson = ? ORDER BY step`, learner, lesson)
	if err != nil {
		return nil, fmt.Errorf("progress of %s in %s: %w", learner, lesson, err)
	}
	return ps, nil
}

func (db *DB) queryProgress(ctx context.Context, query string, args ...any) ([]StepProgress, error) {
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ps := []StepProgress{}
	for rows.Next() {
		var (
			p                              StepProgress
			passedAt, firstSeen, updatedAt sql.NullInt64
		)
		if err := rows.Scan(&p.Lesson, &p.Step, &p.Passed, &passedAt, &p.Attempts, &p.HintsShown, &firstSeen, &updatedAt); err != nil {
			return nil, err
		}
		p.PassedAt, p.FirstSeen, p.UpdatedAt = fromNanos(passedAt), fromNanos(firstSeen), fromNanos(updatedAt)
		ps = append(ps, p)
	}
	return ps, rows.Err()
}

// Attempts lists the learner's attempts at a lesson, newest first (by At,
// then by ID for attempts at the same instant), at most limit of them; a
// limit of 0 or less means all.
func (db *DB) Attempts(ctx context.Context, learner, lesson string, limit int) ([]Attempt, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := db.read.QueryContext(ctx, `
		SELECT id, learner, lesson, step, passed, results, at FROM attempts
		WHERE learner = ? AND lesson = ?
		ORDER BY at DESC, id DESC
		LIMIT ?`, learner, lesson, limit)
	if err != nil {
		return nil, fmt.Errorf("attempts of %s at %s: %w", learner, lesson, err)
	}
	defer rows.Close()
	as := []Attempt{}
	for rows.Next() {
		var (
			a       Attempt
			results sql.NullString
			at      sql.NullInt64
		)
		if err := rows.Scan(&a.ID, &a.Learner, &a.Lesson, &a.Step, &a.Passed, &results, &at); err != nil {
			return nil, fmt.Errorf("attempts of %s at %s: %w", learner, lesson, err)
		}
		if results.Valid {
			a.Results = []byte(results.String)
		}
		a.At = fromNanos(at)
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("attempts of %s at %s: %w", learner, lesson, err)
	}
	return as, nil
}

// HintsShown returns the indexes of the hints of a step the learner has
// seen, in ascending order (empty, not nil, when none).
func (db *DB) HintsShown(ctx context.Context, learner, lesson string, step int) ([]int, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT idx FROM hints WHERE learner = ? AND lesson = ? AND step = ? ORDER BY idx`,
		learner, lesson, step)
	if err != nil {
		return nil, fmt.Errorf("hints shown %s %s step %d: %w", learner, lesson, step, err)
	}
	defer rows.Close()
	out := []int{}
	for rows.Next() {
		var i int
		if err := rows.Scan(&i); err != nil {
			return nil, fmt.Errorf("hints shown %s %s step %d: %w", learner, lesson, step, err)
		}
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("hints shown %s %s step %d: %w", learner, lesson, step, err)
	}
	return out, nil
}
