package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// cheap keeps the tests fast; the format and the code path are the same.
var cheap = Params{Memory: 1 << 10, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestPasswordRoundTrip(t *testing.T) {
	t.Parallel()
	h, err := HashPasswordWith(cheap, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Errorf("encoded hash %q lacks its parameters", h)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"correct horse", true}, {"correct horse ", false}, {"", false}, {"Correct horse", false}} {
		ok, err := VerifyPassword(h, tc.pw)
		if err != nil || ok != tc.want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	h2, _ := HashPasswordWith(cheap, "correct horse")
	if h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}
}

func TestDefaultParamsVerify(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Errorf("hash %q", h)
	}
	if ok, err := VerifyPassword(h, "pw"); !ok || err != nil {
		t.Errorf("VerifyPassword = %v, %v", ok, err)
	}
}

func TestVerifyRefusesBadHashes(t *testing.T) {
	t.Parallel()
	for _, h := range []string{
		"", "plain", "$2a$10$bcrypt", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=18$m=1024,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=0,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=1024,t=1,p=1$!!$a2V5",
		"$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$",
	} {
		if ok, err := VerifyPassword(h, "pw"); ok || !errors.Is(err, ErrBadHash) {
			t.Errorf("VerifyPassword(%q) = %v, %v; want ErrBadHash", h, ok, err)
		}
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	a, b := NewToken(), NewToken()
	if a == b || len(a) != 43 {
		t.Errorf("tokens %q %q", a, b)
	}
	if TokenHash(a) == a || len(TokenHash(a)) != 64 || TokenHash(a) != TokenHash(a) {
		t.Errorf("TokenHash(%q) = %q", a, TokenHash(a))
	}
	if CSRFToken(a) == CSRFToken(b) || CSRFToken(a) == a || CSRFToken(a) == TokenHash(a) {
		t.Error("CSRF tokens are not distinct from each other and from the session")
	}
	if CSRFToken("") != "" {
		t.Error("an empty secret has a CSRF token")
	}
}

func TestCheckCSRF(t *testing.T) {
	t.Parallel()
	want := CSRFToken("secret")
	form := func(v url.Values) *http.Request {
		r := httptest.NewRequest("POST", "/login", strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	header := func(tok string) *http.Request {
		r := httptest.NewRequest("POST", "/api/x", strings.NewReader(`{}`))
		r.Header.Set("Content-Type", "application/json")
		if tok != "" {
			r.Header.Set(CSRFHeader, tok)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string
		ok   bool
	}{
		{"header", header(want), want, true},
		{"wrong header", header(want + "x"), want, false},
		{"no header", header(""), want, false},
		{"form field", form(url.Values{CSRFField: {want}}), want, true},
		{"wrong form field", form(url.Values{CSRFField: {"nope"}}), want, false},
		{"empty want", header(""), "", false},
	} {
		if got := CheckCSRF(tc.r, tc.want); got != tc.ok {
			t.Errorf("%s: CheckCSRF = %v, want %v", tc.name, got, tc.ok)
		}
	}
	for m, want := range map[string]bool{"GET": false, "HEAD": false, "OPTIONS": false, "POST": true, "PUT": true, "PATCH": true, "DELETE": true} {
		if StateChanging(m) != want {
			t.Errorf("StateChanging(%s) = %v", m, !want)
		}
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := NewLimiter()
	l.Now = clk.Now

	// Four failures spread over more than the window never lock.
	for range 4 {
		l.Fail("user:a")
		clk.Add(5 * time.Minute)
	}
	if d := l.Locked("user:a"); d != 0 {
		t.Fatalf("locked for %v after failures spread beyond the window", d)
	}
	// Within the window the fifth failure locks the key, not others.
	for range 4 {
		l.Fail("user:a", "addr:1")
	}
	if d := l.Locked("user:a"); d != 15*time.Minute {
		t.Errorf("user:a locked for %v, want 15m", d)
	}
	if d := l.Locked("addr:1", "user:b"); d != 0 {
		t.Errorf("addr:1 locked for %v after 4 failures", d)
	}
	// Reset does not lift a lock in force.
	l.Reset("user:a")
	clk.Add(10 * time.Minute)
	if d := l.Locked("user:b", "user:a"); d != 5*time.Minute {
		t.Errorf("user:a locked for %v, want 5m left", d)
	}
	clk.Add(5 * time.Minute)
	if d := l.Locked("user:a"); d != 0 {
		t.Errorf("user:a still locked for %v after the lockout", d)
	}
	// Reset forgets failures: four more do not lock.
	l.Fail("user:c")
	l.Fail("user:c")
	l.Reset("user:c")
	for range 4 {
		l.Fail("user:c")
	}
	if d := l.Locked("user:c"); d != 0 {
		t.Errorf("user:c locked for %v; Reset did not forget", d)
	}
}

// A Limiter tells Saved every change, and another restored from what it
// was told (a restarted server) keeps the lock and the counts; what has
// expired is dropped.
func TestLimiterSavedAndRestored(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	type state struct {
		failures []time.Time
		locked   time.Time
	}
	saved := map[string]state{}
	l := NewLimiter()
	l.Now = clk.Now
	l.Saved = func(key string, failures []time.Time, lockedUntil time.Time) {
		if len(failures) == 0 && lockedUntil.IsZero() {
			delete(saved, key)
			return
		}
		saved[key] = state{failures, lockedUntil}
	}
	for range 5 {
		l.Fail("user:a")
	}
	for range 3 {
		l.Fail("user:b")
	}
	l.Fail("user:c")
	l.Reset("user:c")
	if len(saved) != 2 || !saved["user:a"].locked.Equal(clk.Now().Add(15*time.Minute)) || len(saved["user:b"].failures) != 3 {
		t.Fatalf("saved = %+v, want user:a locked for 15m and user:b with 3 failures", saved)
	}

	clk.Add(time.Minute)
	r := NewLimiter()
	r.Now = clk.Now
	for k, st := range saved {
		r.Restore(k, st.failures, st.locked)
	}
	if d := r.Locked("user:a"); d != 14*time.Minute {
		t.Errorf("restored user:a locked for %v, want 14m", d)
	}
	r.Fail("user:b")
	r.Fail("user:b")
	if d := r.Locked("user:b"); d != 15*time.Minute {
		t.Errorf("restored user:b locked for %v after 2 more failures, want 15m", d)
	}
	// Restored past its window and its lock, a key is forgotten.
	clk.Add(time.Hour)
	old := NewLimiter()
	old.Now = clk.Now
	old.Restore("user:a", saved["user:a"].failures, saved["user:a"].locked)
	old.Restore("user:b", saved["user:b"].failures, saved["user:b"].locked)
	if len(old.keys) != 0 {
		t.Errorf("expired keys restored: %v", old.keys)
	}
}
