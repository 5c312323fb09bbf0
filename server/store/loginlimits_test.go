package store

import (
	"errors"
	"testing"
	"time"
)

// Login limits survive a reopen; an empty limit removes its key.
func TestLoginLimitsRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := mustOpenDBIn(t, dir)
	ctx := t.Context()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 123, time.UTC)
	user := LoginLimit{Key: "user:ada", Failures: []time.Time{t0, t0.Add(time.Second)}}
	addr := LoginLimit{Key: "addr:10.0.0.7", LockedUntil: t0.Add(15 * time.Minute)}
	gone := LoginLimit{Key: "user:bob", Failures: []time.Time{t0}}
	for _, l := range []LoginLimit{user, addr, gone, {Key: "user:bob"}} {
		if err := db.SaveLoginLimit(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SaveLoginLimit(ctx, LoginLimit{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("SaveLoginLimit without a key: %v, want ErrInvalid", err)
	}
	// A second handle on the same file, as a restarted server has.
	got, err := mustOpenDBIn(t, dir).LoginLimits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != addr.Key || got[1].Key != user.Key {
		t.Fatalf("LoginLimits = %+v, want %s and %s", got, addr.Key, user.Key)
	}
	if !got[0].LockedUntil.Equal(addr.LockedUntil) || len(got[0].Failures) != 0 {
		t.Errorf("%s = %+v, want locked until %v", addr.Key, got[0], addr.LockedUntil)
	}
	if len(got[1].Failures) != 2 || !got[1].Failures[0].Equal(t0) || !got[1].Failures[1].Equal(t0.Add(time.Second)) || !got[1].LockedUntil.IsZero() {
		t.Errorf("%s = %+v, want its two failures and no lock", user.Key, got[1])
	}
}
