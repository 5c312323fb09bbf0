package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrDrillOver is returned when a result or a hint is recorded for a drill
// attempt that is finished or whose deadline has passed.
var ErrDrillOver = errors.New("drill attempt is over")

// DrillAttempt is one run of a drill by one learner.
type DrillAttempt struct {
	ID          int64
	Learner     string
	Lesson      string // "<track>/<slug>"
	Started     time.Time
	Deadline    time.Time
	Finished    time.Time // zero while running
	Score       int       // points earned minus hint costs, never below 0
	MaxScore    int
	TimedOut    bool
	ClassroomID string // "" (NULL) until classrooms exist
}

// Running says whether the attempt is neither finished nor past its
// deadline at now.
func (a DrillAttempt) Running(now time.Time) bool {
	return a.Finished.IsZero() && now.Before(a.Deadline)
}

// DrillResult is one check run during a drill attempt.
type DrillResult struct {
	Attempt int64
	Step    int
	CheckID string
	Passed  bool
	Message string
	Points  int // what this run earned: the check's points the first time it passes, else 0
	At      time.Time
}

// DrillHint is one hint shown during a drill attempt.
type DrillHint struct {
	Step  int
	Index int
	Cost  int
	At    time.Time
}

// LeaderboardEntry is a learner's best finished attempt at a drill.
type LeaderboardEntry struct {
	Rank    int
	Attempt DrillAttempt
}

// Used is how long the attempt ran (to its finish or its deadline).
func (a DrillAttempt) Used() time.Duration {
	end := a.Finished
	if end.IsZero() {
		end = a.Deadline
	}
	return end.Sub(a.Started)
}

const drillColumns = `id, learner, lesson, started, deadline, finished, score, max_score, timed_out, classroom_id`

func scanDrill(row interface{ Scan(...any) error }) (DrillAttempt, error) {
	var a DrillAttempt
	var started, deadline, finished sql.NullInt64
	var classroom sql.NullString
	if err := row.Scan(&a.ID, &a.Learner, &a.Lesson, &started, &deadline, &finished, &a.Score, &a.MaxScore, &a.TimedOut, &classroom); err != nil {
		return a, err
	}
	a.Started, a.Deadline, a.Finished = fromNanos(started), fromNanos(deadline), fromNanos(finished)
	a.ClassroomID = classroom.String
	return a, nil
}

// StartDrill stores a new attempt from a's Learner, Lesson, Started,
// Deadline and MaxScore (an unknown learner is created) and returns it
// with its ID.
func (db *DB) StartDrill(ctx context.Context, a DrillAttempt) (DrillAttempt, error) {
	switch {
	case a.Learner == "" || a.Lesson == "":
		return a, fmt.Errorf("start drill: %w: empty learner or lesson", ErrInvalid)
	case a.Started.IsZero() || !a.Deadline.After(a.Started):
		return a, fmt.Errorf("start drill %s: %w: the deadline must be after the start", a.Lesson, ErrInvalid)
	case a.MaxScore < 0:
		return a, fmt.Errorf("start drill %s: %w: negative max score", a.Lesson, ErrInvalid)
	}
	for _, t := range []time.Time{a.Started, a.Deadline} {
		if err := checkTime("drill time", t); err != nil {
			return a, fmt.Errorf("start drill %s: %w", a.Lesson, err)
		}
	}
	a.Started, a.Deadline = a.Started.UTC(), a.Deadline.UTC()
	a.Finished, a.Score, a.TimedOut, a.ClassroomID = time.Time{}, 0, false, ""
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if err := ensureLearner(ctx, tx, a.Learner, db.nowUTC()); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			INSERT INTO drill_attempts (learner, lesson, started, deadline, max_score)
			VALUES (?, ?, ?, ?, ?)`,
			a.Learner, a.Lesson, a.Started.UnixNano(), a.Deadline.UnixNano(), a.MaxScore)
		if err != nil {
			return err
		}
		a.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return a, fmt.Errorf("start drill %s for %s: %w", a.Lesson, a.Learner, err)
	}
	return a, nil
}

// DrillAttempt returns the attempt with id, or ErrNotFound.
func (db *DB) DrillAttempt(ctx context.Context, id int64) (DrillAttempt, error) {
	a, err := scanDrill(db.read.QueryRowContext(ctx, `SELECT `+drillColumns+` FROM drill_attempts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("drill attempt %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("drill attempt %d: %w", id, err)
	}
	return a, nil
}

// LatestDrill returns the learner's most recent attempt at lesson, or
// ErrNotFound.
func (db *DB) LatestDrill(ctx context.Context, learner, lesson string) (DrillAttempt, error) {
	a, err := scanDrill(db.read.QueryRowContext(ctx, `
		SELECT `+drillColumns+` FROM drill_attempts
		WHERE learner = ? AND lesson = ? ORDER BY id DESC LIMIT 1`, learner, lesson))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("latest drill %s of %s: %w", lesson, learner, ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("latest drill %s of %s: %w", lesson, learner, err)
	}
	return a, nil
}

// openAttempt reads attempt id inside tx and refuses it with ErrDrillOver
// if it is finished or at is not before its deadline.
func openAttempt(ctx context.Context, tx *sql.Tx, id int64, at time.Time) (DrillAttempt, error) {
	a, err := scanDrill(tx.QueryRowContext(ctx, `SELECT `+drillColumns+` FROM drill_attempts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNotFound
	}
	if err != nil {
		return a, err
	}
	if !a.Running(at) {
		return a, ErrDrillOver
	}
	return a, nil
}

// rescore recomputes an attempt's score from its results and hints.
func rescore(ctx context.Context, tx *sql.Tx, id int64) error {
	_, err := tx.ExecContext(ctx, `
		UPDATE drill_attempts SET score = max(0,
			(SELECT coalesce(sum(points), 0) FROM drill_results WHERE attempt = ?1) -
			(SELECT coalesce(sum(cost), 0) FROM drill_hints WHERE attempt = ?1))
		WHERE id = ?1`, id)
	return err
}

// RecordDrillResult stores one check run of a running attempt. r.Points is
// what the check is worth: it is earned only if r.Passed and the check has
// not passed before in this attempt (a check passed once stays passed).
// A finished attempt, or r.At at or after the deadline, gives ErrDrillOver
// and records nothing. It returns the attempt with its new score.
func (db *DB) RecordDrillResult(ctx context.Context, r DrillResult) (DrillAttempt, error) {
	if r.Step < 1 || r.CheckID == "" || r.Points < 0 || r.At.IsZero() {
		return DrillAttempt{}, fmt.Errorf("record drill result: %w: step %d, check %q, points %d, at %v", ErrInvalid, r.Step, r.CheckID, r.Points, r.At)
	}
	if err := checkTime("result time", r.At); err != nil {
		return DrillAttempt{}, fmt.Errorf("record drill result: %w", err)
	}
	var a DrillAttempt
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		if _, err = openAttempt(ctx, tx, r.Attempt, r.At); err != nil {
			return err
		}
		points := 0
		if r.Passed {
			var before int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM drill_results WHERE attempt = ? AND check_id = ? AND step = ? AND passed = 1`,
				r.Attempt, r.CheckID, r.Step).Scan(&before); err != nil {
				return err
			}
			if before == 0 {
				points = r.Points
			}
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO drill_results (attempt, step, check_id, passed, message, points, at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.Attempt, r.Step, r.CheckID, r.Passed, r.Message, points, r.At.UnixNano()); err != nil {
			return err
		}
		if err := rescore(ctx, tx, r.Attempt); err != nil {
			return err
		}
		a, err = scanDrill(tx.QueryRowContext(ctx, `SELECT `+drillColumns+` FROM drill_attempts WHERE id = ?`, r.Attempt))
		return err
	})
	if err != nil {
		return a, fmt.Errorf("record drill result %d %s: %w", r.Attempt, r.CheckID, err)
	}
	return a, nil
}

// RecordDrillHint charges cost for hint index of step in a running
// attempt. Showing the same hint again costs nothing more. The score never
// goes below 0. Like RecordDrillResult it refuses an attempt that is over
// with ErrDrillOver. It returns the attempt with its new score.
func (db *DB) RecordDrillHint(ctx context.Context, attempt int64, step, index, cost int, at time.Time) (DrillAttempt, error) {
	if step < 1 || index < 0 || cost < 0 || at.IsZero() {
		return DrillAttempt{}, fmt.Errorf("record drill hint: %w: step %d, index %d, cost %d", ErrInvalid, step, index, cost)
	}
	if err := checkTime("hint time", at); err != nil {
		return DrillAttempt{}, fmt.Errorf("record drill hint: %w", err)
	}
	var a DrillAttempt
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		if _, err = openAttempt(ctx, tx, attempt, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO drill_hints (attempt, step, idx, cost, at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (attempt, step, idx) DO NOTHING`,
			attempt, step, index, cost, at.UnixNano()); err != nil {
			return err
		}
		if err := rescore(ctx, tx, attempt); err != nil {
			return err
		}
		a, err = scanDrill(tx.QueryRowContext(ctx, `SELECT `+drillColumns+` FROM drill_attempts WHERE id = ?`, attempt))
		return err
	})
	if err != nil {
		return a, fmt.Errorf("record drill hint %d step %d: %w", attempt, step, err)
	}
	return a, nil
}

// FinishDrill ends an attempt at at (a timed-out attempt ends at its
// deadline, whatever at says). Finishing an attempt that is already
// finished changes nothing and returns it as it is.
func (db *DB) FinishDrill(ctx context.Context, id int64, at time.Time, timedOut bool) (DrillAttempt, error) {
	if err := checkTime("finish time", at); err != nil || at.IsZero() {
		return DrillAttempt{}, fmt.Errorf("finish drill %d: %w: bad time %v", id, ErrInvalid, at)
	}
	var a DrillAttempt
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = scanDrill(tx.QueryRowContext(ctx, `SELECT `+drillColumns+` FROM drill_attempts WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil || !a.Finished.IsZero() {
			return err
		}
		if !at.Before(a.Deadline) {
			at, timedOut = a.Deadline, true
		}
		if timedOut {
			at = a.Deadline
		}
		a.Finished, a.TimedOut = at.UTC(), timedOut
		_, err = tx.ExecContext(ctx, `UPDATE drill_attempts SET finished = ?, timed_out = ? WHERE id = ?`, a.Finished.UnixNano(), timedOut, id)
		return err
	})
	if err != nil {
		return a, fmt.Errorf("finish drill %d: %w", id, err)
	}
	return a, nil
}

// DrillResults returns every check run of an attempt, oldest first.
func (db *DB) DrillResults(ctx context.Context, attempt int64) ([]DrillResult, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT attempt, step, check_id, passed, message, points, at FROM drill_results
		WHERE attempt = ? ORDER BY at, id`, attempt)
	if err != nil {
		return nil, fmt.Errorf("drill results %d: %w", attempt, err)
	}
	defer rows.Close()
	var out []DrillResult
	for rows.Next() {
		var r DrillResult
		var at sql.NullInt64
		if err := rows.Scan(&r.Attempt, &r.Step, &r.CheckID, &r.Passed, &r.Message, &r.Points, &at); err != nil {
			return nil, fmt.Errorf("drill results %d: %w", attempt, err)
		}
		r.At = fromNanos(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("drill results %d: %w", attempt, err)
	}
	return out, nil
}

// DrillHints returns the hints shown during an attempt, oldest first.
func (db *DB) DrillHints(ctx context.Context, attempt int64) ([]DrillHint, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT step, idx, cost, at FROM drill_hints WHERE attempt = ? ORDER BY at, step, idx`, attempt)
	if err != nil {
		return nil, fmt.Errorf("drill hints %d: %w", attempt, err)
	}
	defer rows.Close()
	var out []DrillHint
	for rows.Next() {
		var h DrillHint
		var at sql.NullInt64
		if err := rows.Scan(&h.Step, &h.Index, &h.Cost, &at); err != nil {
			return nil, fmt.Errorf("drill hints %d: %w", attempt, err)
		}
		h.At = fromNanos(at)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("drill hints %d: %w", attempt, err)
	}
	return out, nil
}

// DrillLeaderboard returns each learner's best finished attempt at lesson,
// best first: higher score, then less time used, then the earlier attempt.
// A classroom ID keeps only its members ("" keeps everyone); limit <= 0
// means no limit.
func (db *DB) DrillLeaderboard(ctx context.Context, lesson, classroom string, limit int) ([]LeaderboardEntry, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := db.read.QueryContext(ctx, `
		WITH ranked AS (
			SELECT `+drillColumns+`, ROW_NUMBER() OVER (
				PARTITION BY learner ORDER BY score DESC, finished - started ASC, id ASC) AS n
			FROM drill_attempts WHERE lesson = ?1 AND finished IS NOT NULL
			AND (?2 = '' OR learner IN (SELECT learner FROM classroom_members WHERE classroom = ?2))
		)
		SELECT `+drillColumns+` FROM ranked WHERE n = 1
		ORDER BY score DESC, finished - started ASC, id ASC LIMIT ?3`, lesson, classroom, limit)
	if err != nil {
		return nil, fmt.Errorf("drill leaderboard %s: %w", lesson, err)
	}
	defer rows.Close()
	var out []LeaderboardEntry
	for rows.Next() {
		a, err := scanDrill(rows)
		if err != nil {
			return nil, fmt.Errorf("drill leaderboard %s: %w", lesson, err)
		}
		out = append(out, LeaderboardEntry{Rank: len(out) + 1, Attempt: a})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("drill leaderboard %s: %w", lesson, err)
	}
	return out, nil
}
