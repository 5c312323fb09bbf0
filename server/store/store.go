// Package store is kubelab's persistence: learners, their progress through
// lessons, every check attempt, the hints they were shown, and the sandboxes
// the Manager created (so a restarted server can reconcile them).
//
// It is one SQLite file (dir/kubelab.db) opened with modernc.org/sqlite, a
// pure-Go driver, so the binary needs no cgo. The schema lives in embedded
// migrations (migrations/NNNN_name.sql) applied in order at Open, each in its
// own transaction, and recorded in schema_migrations.
//
// Every connection gets its pragmas through the DSN (see dsn), so they hold
// for connections database/sql opens later too. Writes run in BEGIN IMMEDIATE
// transactions on a pool of one connection: inside one process writers queue
// in Go rather than spinning on SQLite's lock, and across processes (a second
// kubelab on the same file) busy_timeout makes them wait instead of failing
// with SQLITE_BUSY. Reads use a separate pool and, thanks to WAL, never wait
// for a writer.
//
// Durability: the database runs in WAL mode with synchronous=NORMAL. A commit
// appends the transaction to the -wal file with write(2) before COMMIT
// returns; synchronous=NORMAL only skips the fsync at commit (it still syncs
// at checkpoints). Data handed to the kernel survives the death of the
// process, kill -9 included, and the next Open replays the WAL. What NORMAL
// can lose is the last transactions before a power cut or kernel crash, which
// is the trade we accept for a lesson server. TestCrashKeepsAttempts proves
// the kill -9 half of that.
//
// Times are stored as UTC unix nanoseconds (INTEGER, NULL for "never") and
// come back as UTC time.Time values that are Equal to what was stored.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Errors callers branch on.
var (
	// ErrNotFound is returned when a record asked for by key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid is returned, wrapped with what is wrong, for arguments the
	// store refuses to write (an empty learner ID, step 0, results that are
	// not JSON, an unknown sandbox state).
	ErrInvalid = errors.New("invalid")
)

// FileName is the name of the database file inside the directory given to Open.
const FileName = "kubelab.db"

//go:embed migrations/*.sql
var embeddedMigrations embed.FS

// pragmas are applied by the driver to every new connection, in this order
// (busy_timeout first, then the rest). They are here rather than run once
// after Open because database/sql opens and closes connections as it likes:
// a pragma run on one connection says nothing about the next.
var pragmas = []string{
	"busy_timeout(5000)",  // wait up to 5 s for another connection's lock instead of SQLITE_BUSY
	"journal_mode(WAL)",   // readers never block the writer, the writer never blocks readers
	"foreign_keys(1)",     // off by default in SQLite, per connection
	"synchronous(NORMAL)", // durable against process death in WAL mode; see the package doc
}

// DB is kubelab's database. It is safe for concurrent use.
type DB struct {
	path  string
	write *sql.DB // one connection; every transaction BEGIN IMMEDIATE
	read  *sql.DB // several connections for queries
	log   *slog.Logger
	now   func() time.Time
}

// Option configures Open.
type Option func(*options)

type options struct {
	log *slog.Logger
}

// WithLogger makes Open log the migrations it applies to log. Without it the
// store logs nothing.
func WithLogger(log *slog.Logger) Option {
	return func(o *options) { o.log = log }
}

// Open opens (creating it if needed) the database dir/kubelab.db, creating
// dir with mode 0700 if it does not exist, and applies any migrations the
// file lacks. It fails if the file was migrated by a newer kubelab, one with
// migrations this binary does not know.
func Open(ctx context.Context, dir string, opts ...Option) (*DB, error) {
	migrations, err := fs.Sub(embeddedMigrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	return open(ctx, dir, migrations, opts...)
}

// open is Open with the migrations taken from fsys, so tests can feed it
// broken ones.
func open(ctx context.Context, dir string, fsys fs.FS, opts ...Option) (*DB, error) {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if dir == "" {
		return nil, fmt.Errorf("open store: %w: empty directory", ErrInvalid)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	path := filepath.Join(abs, FileName)

	db := &DB{path: path, log: o.log, now: time.Now}
	if db.write, err = sql.Open("sqlite", dsn(path, false)); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	db.write.SetConnMaxIdleTime(0)

	// The first connection creates the file and switches it to WAL; do that
	// (and the migrations) before any reader connects.
	if err := db.migrate(ctx, fsys); err != nil {
		db.write.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}

	if db.read, err = sql.Open("sqlite", dsn(path, true)); err != nil {
		db.write.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	n := max(4, runtime.NumCPU())
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	if err := db.read.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return db, nil
}

// dsn is the modernc.org/sqlite data source name for the file at path. The
// path is escaped as a URI path, so directories with '?', '#' or '%' in
// their names work. readOnly connections also get query_only, so a write
// sent to the read pool by mistake fails instead of bypassing the writer.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	// database/sql's BeginTx becomes BEGIN IMMEDIATE: the write lock is
	// taken at BEGIN, where busy_timeout applies, rather than at the first
	// write inside the transaction, where SQLite may have to fail with
	// SQLITE_BUSY to avoid a deadlock.
	q.Set("_txlock", "immediate")
	if readOnly {
		q.Set("_query_only", "1")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

// Close closes the database. Pending writes have been committed already: each
// method commits before it returns.
func (db *DB) Close() error {
	var errs []error
	if db.read != nil {
		if err := db.read.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := db.write.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store %s: %w", db.path, err)
	}
	return nil
}

// Path is the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// writeTx runs fn in an immediate transaction and commits it if fn returns
// nil.
func (db *DB) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// nowUTC is the store's clock, in UTC.
func (db *DB) nowUTC() time.Time { return db.now().UTC() }

// nanos is t as stored: UTC unix nanoseconds, or NULL for the zero time.
func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos.
func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// checkTime refuses times that do not fit in int64 nanoseconds (before 1678
// or after 2262), which would otherwise be stored wrong.
func checkTime(what string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if !time.Unix(0, t.UnixNano()).Equal(t) {
		return fmt.Errorf("%w: %s %s is out of range", ErrInvalid, what, t.Format(time.RFC3339))
	}
	return nil
}
