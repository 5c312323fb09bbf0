package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// appliedMigrations is schema_migrations as (version, name) pairs plus the
// applied_at values, in version order.
func appliedMigrations(t *testing.T, db *DB) (names []string, appliedAt []int64) {
	t.Helper()
	rows, err := db.read.QueryContext(t.Context(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			v    int
			name string
			at   int64
		)
		if err := rows.Scan(&v, &name, &at); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		appliedAt = append(appliedAt, at)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names, appliedAt
}

// tables lists the user tables of db, sorted.
func tables(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.write.QueryContext(t.Context(), `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func TestMigrateFresh(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	names, _ := appliedMigrations(t, db)
	if want := []string{"0001_init.sql", "0002_accounts.sql", "0003_drills.sql", "0004_classrooms.sql", "0005_sandbox_expiry.sql", "0006_login_limits.sql"}; !reflect.DeepEqual(names, want) {
		t.Errorf("schema_migrations = %q, want %q", names, want)
	}
	want := []string{"attempts", "classroom_members", "classrooms", "drill_attempts", "drill_hints", "drill_results", "hints", "learners", "login_limits", "sandboxes", "schema_migrations", "sessions", "step_progress", "users"}
	if got := tables(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("tables = %q, want %q", got, want)
	}
}

func TestReopenDoesNotReapplyMigrations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime}))

	db, err := Open(t.Context(), dir, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	_, firstAt := appliedMigrations(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := logs.String(), "level=INFO msg=\"applied migration\" version=1 migration=0001_init.sql\nlevel=INFO msg=\"applied migration\" version=2 migration=0002_accounts.sql\nlevel=INFO msg=\"applied migration\" version=3 migration=0003_drills.sql\nlevel=INFO msg=\"applied migration\" version=4 migration=0004_classrooms.sql\nlevel=INFO msg=\"applied migration\" version=5 migration=0005_sandbox_expiry.sql\nlevel=INFO msg=\"applied migration\" version=6 migration=0006_login_limits.sql\n"; got != want {
		t.Errorf("first Open logged %q, want %q", got, want)
	}

	logs.Reset()
	db = mustOpenDBIn(t, dir, WithLogger(log))
	names, againAt := appliedMigrations(t, db)
	if logs.Len() != 0 {
		t.Errorf("second Open logged %q, want nothing", logs.String())
	}
	if want := []string{"0001_init.sql", "0002_accounts.sql", "0003_drills.sql", "0004_classrooms.sql", "0005_sandbox_expiry.sql", "0006_login_limits.sql"}; !reflect.DeepEqual(names, want) {
		t.Errorf("schema_migrations = %q, want %q", names, want)
	}
	if !reflect.DeepEqual(againAt, firstAt) {
		t.Errorf("applied_at changed on reopen: %v, was %v", againAt, firstAt)
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// TestMigrationsApplyInVersionOrder gives migrations whose names sort
// differently as strings and as numbers; the second depends on the first.
func TestMigrationsApplyInVersionOrder(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"10_index.sql": {Data: []byte(`CREATE INDEX things_name ON things (name);`)},
		"9_table.sql":  {Data: []byte(`CREATE TABLE things (name TEXT);`)},
		"README.md":    {Data: []byte(`not a migration`)},
	}
	db, err := open(t.Context(), t.TempDir(), fsys)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	names, _ := appliedMigrations(t, db)
	if want := []string{"9_table.sql", "10_index.sql"}; !reflect.DeepEqual(names, want) {
		t.Errorf("schema_migrations = %q, want %q", names, want)
	}
}

// TestBadMigrationRollsBack applies testdata/badmigrations: 0001 is fine,
// 0002 creates a table, inserts rows and then fails, 0003 is fine but comes
// after the failure.
func TestBadMigrationRollsBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()

	_, err := open(ctx, dir, os.DirFS("testdata/badmigrations"))
	if err == nil {
		t.Fatal("open with a failing migration succeeded")
	}
	prefix := "open store " + filepath.Join(dir, FileName) + ": apply migration 0002_bad.sql: "
	if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, "no such table: nowhere") {
		t.Errorf("error = %q, want %q... mentioning \"no such table: nowhere\"", msg, prefix)
	}

	// Look at what is left with the first migration only: it must not try 0002 again.
	fixed := fstest.MapFS{}
	first, err := os.ReadFile("testdata/badmigrations/0001_gadgets.sql")
	if err != nil {
		t.Fatal(err)
	}
	fixed["0001_gadgets.sql"] = &fstest.MapFile{Data: first}
	db, err := open(ctx, dir, fixed)
	if err != nil {
		t.Fatalf("reopen with the good migration: %v", err)
	}
	defer db.Close()

	names, _ := appliedMigrations(t, db)
	if want := []string{"0001_gadgets.sql"}; !reflect.DeepEqual(names, want) {
		t.Errorf("schema_migrations = %q, want %q", names, want)
	}
	if got, want := tables(t, db), []string{"gadgets", "schema_migrations"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tables = %q, want %q (0002's widgets and 0003's never rolled back or not run)", got, want)
	}
	var gadgets []string
	rows, err := db.read.QueryContext(ctx, `SELECT name FROM gadgets ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		gadgets = append(gadgets, n)
	}
	if want := []string{"first"}; !reflect.DeepEqual(gadgets, want) {
		t.Errorf("gadgets = %q, want %q (0002's insert rolled back)", gadgets, want)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, '0099_future.sql', 1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, dir)
	want := "open store " + filepath.Join(dir, FileName) + ": database has schema version 99, which this kubelab does not know (a newer kubelab migrated it)"
	if err == nil || err.Error() != want {
		t.Errorf("Open of a newer database: err = %v, want %q", err, want)
	}
}

func TestLoadMigrationsRejectsBadNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{"no version", []string{"init.sql"}, "migration init.sql: name must be NNNN_description.sql with NNNN > 0"},
		{"no underscore", []string{"0001.sql"}, "migration 0001.sql: name must be NNNN_description.sql with NNNN > 0"},
		{"version zero", []string{"0000_x.sql"}, "migration 0000_x.sql: name must be NNNN_description.sql with NNNN > 0"},
		{"duplicate", []string{"0001_a.sql", "1_b.sql"}, "migration 1_b.sql: version 1 already used by 0001_a.sql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fsys := fstest.MapFS{}
			for _, f := range tt.files {
				fsys[f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			_, err := loadMigrations(fsys)
			if err == nil || err.Error() != tt.want {
				t.Errorf("loadMigrations(%q) err = %v, want %q", tt.files, err, tt.want)
			}
		})
	}
}

// TestConcurrentOpenMigratesOnce opens the same fresh directory from several
// goroutines at once, as two kubelab processes starting together would.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	const n = 4
	dbs := make([]*DB, n)
	errs := make([]error, n)
	done := make(chan int)
	for i := range n {
		go func() {
			dbs[i], errs[i] = Open(ctx, dir)
			done <- i
		}()
	}
	for range n {
		<-done
	}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		defer dbs[i].Close()
	}
	if err := errors.Join(errs...); err != nil {
		return
	}
	names, _ := appliedMigrations(t, dbs[0])
	if want := []string{"0001_init.sql", "0002_accounts.sql", "0003_drills.sql", "0004_classrooms.sql", "0005_sandbox_expiry.sql", "0006_login_limits.sql"}; !reflect.DeepEqual(names, want) {
		t.Errorf("schema_migrations = %q, want %q", names, want)
	}
}
