package store

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The crash test re-executes this binary as a child that writes and is
	// killed; see crash_test.go.
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir) // never returns
	}
	os.Exit(m.Run())
}

// clock is a settable time source for the store's "now".
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t and returns t.
func (c *clock) Set(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
	return t
}

// mustOpenDB opens a store in a fresh temporary directory and closes it when
// the test ends.
func mustOpenDB(t *testing.T) *DB {
	t.Helper()
	return mustOpenDBIn(t, t.TempDir())
}

func mustOpenDBIn(t *testing.T, dir string, opts ...Option) *DB {
	t.Helper()
	db, err := Open(t.Context(), dir, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// withClock gives db a settable clock starting at start.
func withClock(db *DB, start time.Time) *clock {
	c := &clock{t: start}
	db.now = c.Now
	return c
}

func TestOpenCreatesDirAndFile(t *testing.T) {
	t.Parallel()
	// A directory that does not exist yet, with characters that mean
	// something in a URI, to check the DSN escapes the path.
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%chars", "data")
	db := mustOpenDBIn(t, dir)

	want := filepath.Join(dir, FileName)
	if db.Path() != want {
		t.Errorf("Path() = %q, want %q", db.Path(), want)
	}
	fi, err := os.Stat(want)
	if err != nil {
		t.Fatalf("database file: %v", err)
	}
	if !fi.Mode().IsRegular() {
		t.Errorf("%s is not a regular file", want)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode = %o, want 700", perm)
	}
	// Nothing may have been created beside it (a mis-escaped DSN would make
	// SQLite create a file named after the part before '?').
	entries, err := os.ReadDir(filepath.Dir(filepath.Dir(dir)))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "a dir?with#odd%chars" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("temp dir holds %q, want only the store directory", names)
	}
}

func TestOpenRelativeDirGivesAbsolutePath(t *testing.T) {
	// Not parallel: changes the working directory.
	dir := t.TempDir()
	t.Chdir(dir)
	db := mustOpenDBIn(t, "state")
	want := filepath.Join(dir, "state", FileName)
	if db.Path() != want {
		t.Errorf("Path() = %q, want %q", db.Path(), want)
	}
}

func TestOpenEmptyDir(t *testing.T) {
	t.Parallel()
	_, err := Open(t.Context(), "")
	if !errors.Is(err, ErrInvalid) || err.Error() != "open store: invalid: empty directory" {
		t.Errorf("Open(\"\") error = %v, want ErrInvalid \"open store: invalid: empty directory\"", err)
	}
}

// TestPragmasOnEveryConnection holds several connections of each pool open
// at once, so each is a distinct SQLite connection, and checks that every one
// got the DSN's pragmas.
func TestPragmasOnEveryConnection(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := t.Context()

	type want struct {
		journal                                  string
		foreignKeys, synchronous, busy, queryOnl int
	}
	check := func(t *testing.T, pool *sql.DB, n int, w want) {
		t.Helper()
		var conns []*sql.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := range n {
			c, err := pool.Conn(ctx)
			if err != nil {
				t.Fatalf("conn %d: %v", i, err)
			}
			conns = append(conns, c)
			var got want
			for _, q := range []struct {
				pragma string
				dst    any
			}{
				{"journal_mode", &got.journal},
				{"foreign_keys", &got.foreignKeys},
				{"synchronous", &got.synchronous},
				{"busy_timeout", &got.busy},
				{"query_only", &got.queryOnl},
			} {
				if err := c.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(q.dst); err != nil {
					t.Fatalf("conn %d: PRAGMA %s: %v", i, q.pragma, err)
				}
			}
			if got != w {
				t.Errorf("conn %d: pragmas %+v, want %+v", i, got, w)
			}
		}
	}
	// synchronous NORMAL is 1.
	check(t, db.write, 1, want{journal: "wal", foreignKeys: 1, synchronous: 1, busy: 5000, queryOnl: 0})
	check(t, db.read, 4, want{journal: "wal", foreignKeys: 1, synchronous: 1, busy: 5000, queryOnl: 1})
}

// TestWritesAreImmediate shows that a write transaction holds SQLite's write
// lock from BEGIN: another connection that does not wait (busy_timeout 0)
// cannot start a write, though it can still read.
func TestWritesAreImmediate(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := t.Context()

	other, err := sql.Open("sqlite", "file:"+db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)

	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing written yet: with a deferred BEGIN no lock would be held.
	_, err = other.ExecContext(ctx, "BEGIN IMMEDIATE")
	if err == nil || !strings.Contains(err.Error(), "database is locked") {
		t.Errorf("BEGIN IMMEDIATE beside an open write transaction: err = %v, want \"database is locked\"", err)
	}
	var n int
	if err := other.QueryRowContext(ctx, "SELECT count(*) FROM learners").Scan(&n); err != nil {
		t.Errorf("read beside an open write transaction: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.ExecContext(ctx, "BEGIN IMMEDIATE; ROLLBACK"); err != nil {
		t.Errorf("BEGIN IMMEDIATE after the write transaction ended: %v", err)
	}
}

func TestReadPoolRefusesWrites(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	_, err := db.read.ExecContext(t.Context(), `INSERT INTO learners (id, created_at, last_seen) VALUES ('x', 1, 1)`)
	if err == nil || !strings.Contains(err.Error(), "attempt to write a readonly database") {
		t.Errorf("write through the read pool: err = %v, want \"attempt to write a readonly database\"", err)
	}
}

func TestForeignKeysEnforced(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	_, err := db.write.ExecContext(t.Context(), `
		INSERT INTO step_progress (learner, lesson, step, first_seen, updated_at)
		VALUES ('nobody', 'k8s/pods', 1, 1, 1)`)
	if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY constraint failed") {
		t.Errorf("progress for an unknown learner: err = %v, want \"FOREIGN KEY constraint failed\"", err)
	}
}

// TestReopenKeepsData closes the store and opens the same directory again.
func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)

	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := db.RecordAttempt(ctx, Attempt{Learner: "ada", Lesson: "k8s/scale", Step: 1, Passed: true, Results: []byte(`{}`), At: at})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.RecordHint(ctx, "ada", "k8s/scale", 2, 0); err != nil {
		t.Fatal(err)
	}
	sb := SandboxRecord{ID: "sb-1", Owner: "ada", Provider: "shell", Kind: 1, State: SandboxReady, Detail: `{"home":"/tmp/x"}`, CreatedAt: at, LastUsed: at}
	if err := db.PutSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = mustOpenDBIn(t, dir)
	got, err := db.Attempts(ctx, "ada", "k8s/scale", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Attempt{{ID: id, Learner: "ada", Lesson: "k8s/scale", Step: 1, Passed: true, Results: []byte(`{}`), At: at}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Attempts after reopen = %+v, want %+v", got, want)
	}
	ps, err := db.LessonProgress(ctx, "ada", "k8s/scale")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || !ps[0].Passed || ps[0].Attempts != 1 || !ps[0].PassedAt.Equal(at) || ps[1].HintsShown != 1 {
		t.Errorf("LessonProgress after reopen = %+v, want step 1 passed at %v after 1 attempt, step 2 with 1 hint", ps, at)
	}
	gotSB, err := db.Sandbox(ctx, "sb-1")
	if err != nil {
		t.Fatal(err)
	}
	if gotSB != sb {
		t.Errorf("Sandbox after reopen = %+v, want %+v", gotSB, sb)
	}
}
