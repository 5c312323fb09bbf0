package kind

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestEndpoints: a value is reused within endpointTTL, fetched again after
// it or after forget, and a failed fetch is not remembered.
func TestEndpoints(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	e := &endpoints{now: func() time.Time { return now }}
	calls := 0
	fetch := func(context.Context) (string, error) { calls++; return "v" + string(rune('0'+calls)), nil }
	ctx := context.Background()
	get := func() string {
		v, err := e.get(ctx, "a/kubeconfig", fetch)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := get(); v != "v1" || calls != 1 {
		t.Fatalf("first get = %q after %d fetches", v, calls)
	}
	now = now.Add(endpointTTL - time.Second)
	if v := get(); v != "v1" || calls != 1 {
		t.Fatalf("get within the TTL = %q after %d fetches, want the remembered v1", v, calls)
	}
	now = now.Add(2 * time.Second)
	if v := get(); v != "v2" || calls != 2 {
		t.Fatalf("get after the TTL = %q after %d fetches, want a new fetch", v, calls)
	}
	e.forget("a")
	if v := get(); v != "v3" || calls != 3 {
		t.Fatalf("get after forget = %q after %d fetches, want a new fetch", v, calls)
	}
	boom := errors.New("boom")
	if _, err := e.get(ctx, "b/engine", func(context.Context) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("failed fetch: %v", err)
	}
	if v, _ := e.get(ctx, "b/engine", func(context.Context) (string, error) { return "ok", nil }); v != "ok" {
		t.Fatalf("a failure was remembered: %q", v)
	}
}
