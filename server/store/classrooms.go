package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Classroom is an instructor's class: learners join it with Code.
type Classroom struct {
	ID         string
	Name       string
	Code       string // join code, CodeLen letters and digits of codeAlphabet
	Instructor string // user ID
	Lessons    []string
	StartsAt   time.Time // zero: open from creation
	EndsAt     time.Time // zero: never closes
	CPUMillis  int       // per-learner sandbox limits; 0 = the server's default
	MemoryMiB  int
	CreatedAt  time.Time
}

// Member is a learner in a classroom.
type Member struct {
	Learner  string
	Username string // "" for a learner without an account
	JoinedAt time.Time
}

// CodeLen is the length of a join code.
const CodeLen = 6

// codeAlphabet has no 0/O, 1/I/L, 5/S, 2/Z, 8/B: codes are read aloud and
// typed from a projector.
const codeAlphabet = "ACDEFGHJKMNPQRTUVWXY34679"

// NormalizeCode upper-cases a typed code and drops spaces and dashes.
func NormalizeCode(code string) string {
	code = strings.ToUpper(code)
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, code)
}

func newCode() (string, error) {
	var b [CodeLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)] // 256 % 25 bias is small and harmless here
	}
	return string(b[:]), nil
}

func nanosOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func timeOrZero(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// CreateClassroom stores c with a new ID and a new unique join code (c.ID
// and c.Code are ignored) and returns it.
func (db *DB) CreateClassroom(ctx context.Context, c Classroom) (Classroom, error) {
	c.Name = strings.TrimSpace(c.Name)
	switch {
	case c.Name == "":
		return Classroom{}, fmt.Errorf("create classroom: %w: empty name", ErrInvalid)
	case c.Instructor == "":
		return Classroom{}, fmt.Errorf("create classroom %s: %w: no instructor", c.Name, ErrInvalid)
	case !c.StartsAt.IsZero() && !c.EndsAt.IsZero() && !c.EndsAt.After(c.StartsAt):
		return Classroom{}, fmt.Errorf("create classroom %s: %w: it ends before it starts", c.Name, ErrInvalid)
	case c.CPUMillis < 0 || c.MemoryMiB < 0:
		return Classroom{}, fmt.Errorf("create classroom %s: %w: negative sandbox limit", c.Name, ErrInvalid)
	}
	if c.Lessons == nil {
		c.Lessons = []string{}
	}
	lessons, err := json.Marshal(c.Lessons)
	if err != nil {
		return Classroom{}, fmt.Errorf("create classroom %s: %w", c.Name, err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Classroom{}, fmt.Errorf("create classroom %s: %w", c.Name, err)
	}
	c.ID = hex.EncodeToString(id[:])
	c.CreatedAt = db.nowUTC()
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		for range 20 { // 25^6 codes: a clash is rare, twenty in a row is not going to happen
			code, err := newCode()
			if err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM classrooms WHERE code = ?`, code).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				c.Code = code
				break
			}
		}
		if c.Code == "" {
			return errors.New("no free join code")
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO classrooms (id, name, code, instructor, lessons, starts_at, ends_at, cpu_millis, memory_mib, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Name, c.Code, c.Instructor, string(lessons), nanosOrNull(c.StartsAt), nanosOrNull(c.EndsAt),
			c.CPUMillis, c.MemoryMiB, c.CreatedAt.UnixNano())
		return err
	})
	if err != nil {
		return Classroom{}, fmt.Errorf("create classroom %s: %w", c.Name, err)
	}
	return c, nil
}

const classroomColumns = `id, name, code, instructor, lessons, starts_at, ends_at, cpu_millis, memory_mib, created_at`

func scanClassroom(row interface{ Scan(...any) error }) (Classroom, error) {
	var (
		c            Classroom
		lessons      string
		starts, ends sql.NullInt64
		created      int64
	)
	if err := row.Scan(&c.ID, &c.Name, &c.Code, &c.Instructor, &lessons, &starts, &ends, &c.CPUMillis, &c.MemoryMiB, &created); err != nil {
		return c, err
	}
	if err := json.Unmarshal([]byte(lessons), &c.Lessons); err != nil {
		return c, fmt.Errorf("classroom %s lessons: %w", c.ID, err)
	}
	c.StartsAt, c.EndsAt = timeOrZero(starts), timeOrZero(ends)
	c.CreatedAt = time.Unix(0, created).UTC()
	return c, nil
}

func (db *DB) classroomWhere(ctx context.Context, what, where string, arg any) (Classroom, error) {
	c, err := scanClassroom(db.read.QueryRowContext(ctx, `SELECT `+classroomColumns+` FROM classrooms WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Classroom{}, fmt.Errorf("classroom %s: %w", what, err)
	}
	return c, nil
}

// ClassroomByID returns a classroom or ErrNotFound.
func (db *DB) ClassroomByID(ctx context.Context, id string) (Classroom, error) {
	return db.classroomWhere(ctx, id, `id = ?`, id)
}

// ClassroomByCode returns the classroom with a join code (normalized with
// NormalizeCode) or ErrNotFound.
func (db *DB) ClassroomByCode(ctx context.Context, code string) (Classroom, error) {
	return db.classroomWhere(ctx, "code "+code, `code = ?`, NormalizeCode(code))
}

// Classrooms lists the classrooms of an instructor ("" for all), newest
// first.
func (db *DB) Classrooms(ctx context.Context, instructor string) ([]Classroom, error) {
	return db.classroomList(ctx, "classrooms", `SELECT `+classroomColumns+` FROM classrooms
		WHERE ?1 = '' OR instructor = ?1 ORDER BY created_at DESC, id`, instructor)
}

// JoinedClassrooms lists the classrooms a learner joined, by ID (the order
// of LearnerClassrooms).
func (db *DB) JoinedClassrooms(ctx context.Context, learner string) ([]Classroom, error) {
	return db.classroomList(ctx, "classrooms of "+learner, `SELECT `+classroomColumns+` FROM classrooms
		WHERE id IN (SELECT classroom FROM classroom_members WHERE learner = ?) ORDER BY id`, learner)
}

// classroomList runs a query of classroomColumns; what names it in errors.
func (db *DB) classroomList(ctx context.Context, what, query string, args ...any) ([]Classroom, error) {
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var list []Classroom
	for rows.Next() {
		c, err := scanClassroom(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		list = append(list, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return list, nil
}

// JoinClassroom adds a learner to a classroom; joining again changes
// nothing. An unknown learner is created.
func (db *DB) JoinClassroom(ctx context.Context, classroom, learner string) error {
	if learner == "" {
		return fmt.Errorf("join classroom %s: %w: empty learner ID", classroom, ErrInvalid)
	}
	now := db.nowUTC()
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if err := ensureLearner(ctx, tx, learner, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			INSERT INTO classroom_members (classroom, learner, joined_at)
			SELECT id, ?2, ?3 FROM classrooms WHERE id = ?1
			ON CONFLICT (classroom, learner) DO NOTHING`, classroom, learner, now.UnixNano())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var exists int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM classrooms WHERE id = ?`, classroom).Scan(&exists); err != nil {
				return err
			}
			if exists == 0 {
				return ErrNotFound
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("join classroom %s: %w", classroom, err)
	}
	return nil
}

// IsMember reports whether a learner joined a classroom.
func (db *DB) IsMember(ctx context.Context, classroom, learner string) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM classroom_members WHERE classroom = ? AND learner = ?`, classroom, learner).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("classroom %s member %s: %w", classroom, learner, err)
	}
	return n > 0, nil
}

// Members lists a classroom's learners in the order they joined, with
// their usernames where they have accounts.
func (db *DB) Members(ctx context.Context, classroom string) ([]Member, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT m.learner, coalesce(u.username, ''), m.joined_at
		FROM classroom_members m LEFT JOIN users u ON u.id = m.learner
		WHERE m.classroom = ? ORDER BY m.joined_at, m.learner`, classroom)
	if err != nil {
		return nil, fmt.Errorf("classroom %s members: %w", classroom, err)
	}
	defer rows.Close()
	var list []Member
	for rows.Next() {
		var (
			m  Member
			at int64
		)
		if err := rows.Scan(&m.Learner, &m.Username, &at); err != nil {
			return nil, fmt.Errorf("classroom %s members: %w", classroom, err)
		}
		m.JoinedAt = time.Unix(0, at).UTC()
		list = append(list, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("classroom %s members: %w", classroom, err)
	}
	return list, nil
}

// LearnerClassrooms lists the IDs of the classrooms a learner joined.
func (db *DB) LearnerClassrooms(ctx context.Context, learner string) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT classroom FROM classroom_members WHERE learner = ? ORDER BY classroom`, learner)
	if err != nil {
		return nil, fmt.Errorf("classrooms of %s: %w", learner, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("classrooms of %s: %w", learner, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("classrooms of %s: %w", learner, err)
	}
	return ids, nil
}
