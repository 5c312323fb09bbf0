package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrExists is returned when a record with the same unique key is already
// there (a username taken).
var ErrExists = errors.New("already exists")

// Roles a user can have.
const (
	RoleLearner    = "learner"
	RoleInstructor = "instructor"
	RoleAdmin      = "admin"
)

// ValidRole reports whether role is one of the roles above.
func ValidRole(role string) bool {
	return role == RoleLearner || role == RoleInstructor || role == RoleAdmin
}

// User is an account. Its ID is also its learner ID.
type User struct {
	ID           string
	Username     string
	PasswordHash string // encoded by package auth; empty for accounts from an identity provider
	Role         string
	CreatedAt    time.Time
	ExternalID   string // issuer and subject of an OpenID Connect account; "" for a local one
}

// Session is a signed-in browser. ID is the hex SHA-256 of the cookie's
// token; the token itself is never stored.
type Session struct {
	ID        string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	LastSeen  time.Time
	RevokedAt time.Time // zero if not revoked
}

// CreateUser adds an account with a new random ID (which is also recorded as
// a learner). It fails with ErrExists if the username is taken.
func (db *DB) CreateUser(ctx context.Context, username, passwordHash, role string) (User, error) {
	username = strings.TrimSpace(username)
	switch {
	case username == "":
		return User{}, fmt.Errorf("create user: %w: empty username", ErrInvalid)
	case !ValidRole(role):
		return User{}, fmt.Errorf("create user %s: %w: unknown role %q", username, ErrInvalid, role)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return User{}, fmt.Errorf("create user %s: %w", username, err)
	}
	u := User{ID: hex.EncodeToString(b[:]), Username: username, PasswordHash: passwordHash, Role: role, CreatedAt: db.nowUTC()}
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		taken, err := usernameTaken(ctx, tx, username)
		if err != nil {
			return err
		}
		if taken {
			return ErrExists
		}
		return insertUser(ctx, tx, u)
	})
	if err != nil {
		return User{}, fmt.Errorf("create user %s: %w", username, err)
	}
	return u, nil
}

func usernameTaken(ctx context.Context, tx *sql.Tx, username string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE username = ?`, username).Scan(&n)
	return n > 0, err
}

func insertUser(ctx context.Context, tx *sql.Tx, u User) error {
	if err := ensureLearner(ctx, tx, u.ID, u.CreatedAt); err != nil {
		return err
	}
	var ext any
	if u.ExternalID != "" {
		ext = u.ExternalID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, password_hash, role, created_at, external_id) VALUES (?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.PasswordHash, u.Role, u.CreatedAt.UnixNano(), ext)
	return err
}

// ExternalUser returns the account of an identity provider's user, creating
// it on first sign-in with the given username (suffixed with part of the
// external ID if a different account has that name already) and role. An
// existing account gets role if setRole (the provider says which role);
// otherwise it keeps the one it has.
func (db *DB) ExternalUser(ctx context.Context, externalID, username, role string, setRole bool) (User, error) {
	username = strings.TrimSpace(username)
	switch {
	case externalID == "":
		return User{}, fmt.Errorf("external user: %w: empty external ID", ErrInvalid)
	case username == "":
		return User{}, fmt.Errorf("external user %s: %w: empty username", externalID, ErrInvalid)
	case !ValidRole(role):
		return User{}, fmt.Errorf("external user %s: %w: unknown role %q", externalID, ErrInvalid, role)
	}
	var u User
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE external_id = ?`, externalID))
		switch {
		case err == nil:
			if setRole && u.Role != role {
				u.Role = role
				_, err = tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE id = ?`, role, u.ID)
			}
			return err
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		u = User{ID: hex.EncodeToString(b[:]), Username: username, Role: role, CreatedAt: db.nowUTC(), ExternalID: externalID}
		taken, err := usernameTaken(ctx, tx, username)
		if err != nil {
			return err
		}
		if taken {
			h := sha256.Sum256([]byte(externalID))
			u.Username = username + "-" + hex.EncodeToString(h[:4])
		}
		return insertUser(ctx, tx, u)
	})
	if err != nil {
		return User{}, fmt.Errorf("external user %s: %w", externalID, err)
	}
	return u, nil
}

const userColumns = `id, username, password_hash, role, created_at, external_id`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created sql.NullInt64
	var ext sql.NullString
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Role, &created, &ext); err != nil {
		return User{}, err
	}
	u.CreatedAt = fromNanos(created)
	u.ExternalID = ext.String
	return u, nil
}

// UserByUsername returns the account named username, or ErrNotFound.
func (db *DB) UserByUsername(ctx context.Context, username string) (User, error) {
	u, err := scanUser(db.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", username, err)
	}
	return u, nil
}

// UserByID returns the account with this ID, or ErrNotFound.
func (db *DB) UserByID(ctx context.Context, id string) (User, error) {
	u, err := scanUser(db.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("user id %s: %w", id, err)
	}
	return u, nil
}

// Users lists every account by username.
func (db *DB) Users(ctx context.Context) ([]User, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// CreateSession records a session. CreatedAt and LastSeen default to now.
func (db *DB) CreateSession(ctx context.Context, s Session) error {
	switch {
	case s.ID == "" || s.UserID == "":
		return fmt.Errorf("create session: %w: empty session or user ID", ErrInvalid)
	case s.ExpiresAt.IsZero():
		return fmt.Errorf("create session: %w: no expiry", ErrInvalid)
	}
	if err := checkTime("expiry", s.ExpiresAt); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	now := db.nowUTC()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	if s.LastSeen.IsZero() {
		s.LastSeen = now
	}
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen, revoked_at)
			VALUES (?, ?, ?, ?, ?, ?)`,
			s.ID, s.UserID, s.CreatedAt.UnixNano(), s.ExpiresAt.UnixNano(), s.LastSeen.UnixNano(), nanos(s.RevokedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create session for user %s: %w", s.UserID, err)
	}
	return nil
}

// Session returns the session with this ID (token hash), revoked and
// expired ones included: the caller judges them with its own clock. It
// fails with ErrNotFound if there is none.
func (db *DB) Session(ctx context.Context, id string) (Session, error) {
	var s Session
	var created, expires, seen, revoked sql.NullInt64
	err := db.read.QueryRowContext(ctx, `
		SELECT id, user_id, created_at, expires_at, last_seen, revoked_at FROM sessions WHERE id = ?`, id).
		Scan(&s.ID, &s.UserID, &created, &expires, &seen, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("session: %w", err)
	}
	s.CreatedAt, s.ExpiresAt, s.LastSeen, s.RevokedAt = fromNanos(created), fromNanos(expires), fromNanos(seen), fromNanos(revoked)
	return s, nil
}

// TouchSession sets a session's last_seen to at.
func (db *DB) TouchSession(ctx context.Context, id string, at time.Time) error {
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET last_seen = ? WHERE id = ?`, at.UTC().UnixNano(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// RevokeSession marks one session revoked (logout). Revoking an unknown or
// already revoked session is not an error.
func (db *DB) RevokeSession(ctx context.Context, id string) error {
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, db.nowUTC().UnixNano(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokeUserSessions revokes every live session of a user and returns how
// many it revoked.
func (db *DB) RevokeUserSessions(ctx context.Context, userID string) (int, error) {
	var n int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, db.nowUTC().UnixNano(), userID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user %s: %w", userID, err)
	}
	return int(n), nil
}
