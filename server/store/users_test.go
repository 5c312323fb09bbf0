package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCreateUserAndLookUp(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := t.Context()
	c := withClock(db, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))

	alice, err := db.CreateUser(ctx, "alice", "$argon2id$x", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if len(alice.ID) != 32 || !alice.CreatedAt.Equal(c.Now()) {
		t.Errorf("created %+v", alice)
	}
	if _, err := db.CreateUser(ctx, "alice", "h", RoleLearner); !errors.Is(err, ErrExists) {
		t.Errorf("second alice: %v, want ErrExists", err)
	}
	for _, tc := range []struct{ name, role string }{{"", RoleLearner}, {"bob", "root"}} {
		if _, err := db.CreateUser(ctx, tc.name, "h", tc.role); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateUser(%q, %q): %v, want ErrInvalid", tc.name, tc.role, err)
		}
	}
	bob, err := db.CreateUser(ctx, "bob", "h2", RoleLearner)
	if err != nil {
		t.Fatal(err)
	}

	got, err := db.UserByUsername(ctx, "alice")
	if err != nil || got != alice {
		t.Errorf("UserByUsername = %+v, %v; want %+v", got, err, alice)
	}
	got, err = db.UserByID(ctx, bob.ID)
	if err != nil || got != bob {
		t.Errorf("UserByID = %+v, %v; want %+v", got, err, bob)
	}
	if _, err := db.UserByUsername(ctx, "carol"); !errors.Is(err, ErrNotFound) {
		t.Errorf("carol: %v, want ErrNotFound", err)
	}
	all, err := db.Users(ctx)
	if err != nil || len(all) != 2 || all[0].Username != "alice" || all[1].Username != "bob" {
		t.Errorf("Users = %+v, %v", all, err)
	}
	// The user is a learner too: progress can hang off its ID.
	if _, err := db.RecordHint(ctx, bob.ID, "demo/hello", 1, 0); err != nil {
		t.Errorf("hint for a user's learner ID: %v", err)
	}
}

func TestSessions(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := t.Context()
	c := withClock(db, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	u, err := db.CreateUser(ctx, "alice", "h", RoleLearner)
	if err != nil {
		t.Fatal(err)
	}
	exp := c.Now().Add(time.Hour)
	for _, id := range []string{"s1", "s2"} {
		if err := db.CreateSession(ctx, Session{ID: id, UserID: u.ID, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateSession(ctx, Session{ID: "s3", UserID: "nobody", ExpiresAt: exp}); err == nil {
		t.Error("session for an unknown user was accepted")
	}
	if err := db.CreateSession(ctx, Session{ID: "s4", UserID: u.ID}); !errors.Is(err, ErrInvalid) {
		t.Errorf("session without expiry: %v, want ErrInvalid", err)
	}

	s, err := db.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	want := Session{ID: "s1", UserID: u.ID, CreatedAt: c.Now(), ExpiresAt: exp, LastSeen: c.Now()}
	if s != want {
		t.Errorf("Session = %+v, want %+v", s, want)
	}
	seen := c.Now().Add(time.Minute)
	if err := db.TouchSession(ctx, "s1", seen); err != nil {
		t.Fatal(err)
	}
	revokedAt := c.Set(c.Now().Add(2 * time.Minute))
	if err := db.RevokeSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	s, _ = db.Session(ctx, "s1")
	if !s.LastSeen.Equal(seen) || !s.RevokedAt.Equal(revokedAt) {
		t.Errorf("after touch and revoke: %+v", s)
	}
	if _, err := db.Session(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown session: %v, want ErrNotFound", err)
	}

	// s1 is revoked already: only s2 is left to revoke.
	n, err := db.RevokeUserSessions(ctx, u.ID)
	if err != nil || n != 1 {
		t.Errorf("RevokeUserSessions = %d, %v; want 1", n, err)
	}
	s, _ = db.Session(ctx, "s2")
	if s.RevokedAt.IsZero() {
		t.Error("s2 not revoked")
	}
}

func TestExternalUser(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := t.Context()
	local, err := db.CreateUser(ctx, "alice", "h", RoleLearner)
	if err != nil {
		t.Fatal(err)
	}
	// First sign-in creates the account; "alice" is taken by a local one.
	a, err := db.ExternalUser(ctx, "https://idp#123", "alice", RoleLearner, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == local.ID || a.Username == "alice" || !strings.HasPrefix(a.Username, "alice-") || a.ExternalID != "https://idp#123" || a.PasswordHash != "" {
		t.Errorf("created %+v", a)
	}
	// Again: the same account; the role stays unless the provider sets it.
	again, err := db.ExternalUser(ctx, "https://idp#123", "renamed", RoleAdmin, false)
	if err != nil || again != a {
		t.Errorf("second sign-in = %+v, %v; want %+v", again, err, a)
	}
	promoted, err := db.ExternalUser(ctx, "https://idp#123", "alice", RoleInstructor, true)
	if err != nil || promoted.ID != a.ID || promoted.Role != RoleInstructor {
		t.Errorf("role from the provider: %+v, %v", promoted, err)
	}
	if got, _ := db.UserByID(ctx, a.ID); got.Role != RoleInstructor || got.ExternalID != a.ExternalID {
		t.Errorf("stored %+v", got)
	}
	if _, err := db.ExternalUser(ctx, "", "x", RoleLearner, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty external ID: %v", err)
	}
}
