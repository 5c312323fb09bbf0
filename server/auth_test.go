package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kubelab/sandbox"
	"kubelab/sandbox/shell"
	"kubelab/server"
	"kubelab/server/auth"
	"kubelab/server/store"
)

// cheapHash keeps the tests fast: argon2id with tiny costs. The stored
// hash carries its parameters, so the server verifies it as it would any.
func cheapHash(t *testing.T, password string) string {
	t.Helper()
	h, err := auth.HashPasswordWith(auth.Params{Memory: 1 << 10, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, password)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// testClock is a settable clock for the server.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openLocalServer starts a server with --auth local on a settable clock,
// with users alice (learner), bob (learner) and ines (instructor), each
// with the password "<name>-pw".
func openLocalServer(t *testing.T) (*testServer, *testClock, map[string]store.User) {
	t.Helper()
	clk := &testClock{t: time.Now()}
	ts := openServer(t, "", "testdata/lessons", func(log *slog.Logger) sandbox.Provider {
		return shell.New(t.TempDir(), log)
	}, func(cfg *server.Config) {
		cfg.Auth = server.AuthLocal
		cfg.SessionTTL = 12 * time.Hour
		cfg.Now = clk.Now
	})
	return ts, clk, createUsers(t, ts)
}

// createUsers makes the test accounts alice and bob (learners) and ines
// (instructor), each with the password <name>-pw.
func createUsers(t *testing.T, ts *testServer) map[string]store.User {
	t.Helper()
	users := map[string]store.User{}
	for name, role := range map[string]string{"alice": store.RoleLearner, "bob": store.RoleLearner, "ines": store.RoleInstructor} {
		u, err := ts.DB.CreateUser(t.Context(), name, cheapHash(t, name+"-pw"), role)
		if err != nil {
			t.Fatal(err)
		}
		users[name] = u
	}
	return users
}

// newBrowser is a client that has not loaded any page yet.
func newBrowser(t *testing.T, ts *testServer) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: ts.URL, http: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
}

// login loads the login page (for its CSRF token) and posts the form,
// following the redirect. It returns the final status, URL path and body.
func (c *client) login(username, password, next string) (int, string, string) {
	c.t.Helper()
	c.get("/login")
	return c.postForm("/login", url.Values{"username": {username}, "password": {password}, "next": {next}, "csrf_token": {c.csrf}})
}

// postForm posts a form as a browser does and follows redirects.
func (c *client) postForm(path string, v url.Values) (int, string, string) {
	c.t.Helper()
	res, err := c.http.PostForm(c.base+path, v)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if m := csrfMeta.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	if ra := res.Header.Get("Retry-After"); ra != "" {
		b = append([]byte("Retry-After: "+ra+"\n"), b...)
	}
	return res.StatusCode, res.Request.URL.Path, string(b)
}

func apiError(b []byte) string {
	var e struct{ Error string }
	_ = json.Unmarshal(b, &e)
	return e.Error
}

func TestCSRFTokenRequiredWithAuthNone(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	c, other := newClient(t, ts), newClient(t, ts)
	if c.csrf == "" || c.csrf == other.csrf {
		t.Fatalf("pages must carry a per-browser CSRF token: %q, %q", c.csrf, other.csrf)
	}
	good := c.csrf
	for _, tc := range []struct{ name, token string }{{"missing", ""}, {"another browser's", other.csrf}, {"garbage", "x"}} {
		c.csrf = tc.token
		code, body := c.post("/api/lessons/demo/hello/hint", "application/json", `{"step":1,"index":0}`)
		if code != http.StatusForbidden || !strings.Contains(apiError(body), "CSRF token") {
			t.Errorf("%s token: %d %s; want 403 about the CSRF token", tc.name, code, body)
		}
	}
	c.csrf = good
	if code, body := c.post("/api/lessons/demo/hello/hint", "application/json", `{"step":1,"index":0}`); code != http.StatusOK {
		t.Errorf("with the page's token: %d %s", code, body)
	}
	// The token is derived from the cookie: the same on every page.
	if _, page := c.get("/"); !strings.Contains(string(page), `content="`+good+`"`) {
		t.Error("the CSRF token changed between two pages of one browser")
	}
}

func TestLocalAuthSignedOut(t *testing.T) {
	t.Parallel()
	ts, _, _ := openLocalServer(t)
	c := newBrowser(t, ts)

	code, body := c.get("/api/progress")
	if code != http.StatusUnauthorized || !strings.Contains(apiError(body), "not signed in") {
		t.Errorf("API signed out: %d %s; want 401", code, body)
	}
	res, err := c.http.Get(ts.URL + "/lessons/demo/hello")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Request.URL.Path != "/login" || res.Request.URL.Query().Get("next") != "/lessons/demo/hello" {
		t.Errorf("page signed out ended at %s; want /login?next=/lessons/demo/hello", res.Request.URL)
	}
	for _, p := range []string{"/healthz", "/static/style.css"} {
		if code, _ := c.get(p); code != http.StatusOK {
			t.Errorf("%s signed out: %d, want 200", p, code)
		}
	}
	u := strings.Replace(ts.URL, "http://", "ws://", 1) + "/ws/terminal?tab=0&lesson=demo/hello"
	h := http.Header{"Origin": {ts.URL}}
	if _, res, err := websocket.DefaultDialer.Dial(u, h); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("terminal signed out: %v %v; want 401", res, err)
	}
}

func TestLoginWrongPasswordThenRight(t *testing.T) {
	t.Parallel()
	ts, _, users := openLocalServer(t)
	c := newBrowser(t, ts)

	code, _, body := c.login("alice", "nope", "")
	if code != http.StatusUnauthorized || !strings.Contains(body, "Wrong username or password.") {
		t.Errorf("wrong password: %d %s", code, body)
	}
	code, _, body = c.login("mallory", "alice-pw", "")
	if code != http.StatusUnauthorized || !strings.Contains(body, "Wrong username or password.") {
		t.Errorf("unknown user: %d %s", code, body)
	}
	code, path, body := c.login("alice", "alice-pw", "/lessons/demo/hello")
	if code != http.StatusOK || path != "/lessons/demo/hello" || !strings.Contains(body, "Sign out") {
		t.Fatalf("right password: %d at %s", code, path)
	}
	// The learner ID everywhere is the user's ID.
	code, b := c.get("/api/progress")
	var prog struct{ Learner string }
	_ = json.Unmarshal(b, &prog)
	if code != http.StatusOK || prog.Learner != users["alice"].ID {
		t.Errorf("progress: %d %s; want learner %s", code, b, users["alice"].ID)
	}
	// A redirect target off the site is ignored.
	c2 := newBrowser(t, ts)
	if _, path, _ := c2.login("bob", "bob-pw", "//evil.example/"); path != "/" {
		t.Errorf("next=//evil.example/ led to %s; want /", path)
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	t.Parallel()
	ts, _, _ := openLocalServer(t)
	c := newBrowser(t, ts)
	c.get("/login")
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.http.PostForm(ts.URL+"/login", url.Values{"username": {"alice"}, "password": {"alice-pw"}, "csrf_token": {c.csrf}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var sess *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == server.SessionCookie {
			sess = ck
		}
	}
	if res.StatusCode != http.StatusSeeOther || sess == nil {
		t.Fatalf("login: %d, cookies %v", res.StatusCode, res.Cookies())
	}
	if !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Secure || sess.Path != "/" || sess.MaxAge != 12*3600 {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Lax, not Secure over plain HTTP, Path=/, Max-Age 12h", sess)
	}
	// Only the token's hash is stored.
	if _, err := ts.DB.Session(t.Context(), sess.Value); err == nil {
		t.Error("the cookie's token is stored as the session key")
	}
	if _, err := ts.DB.Session(t.Context(), auth.TokenHash(sess.Value)); err != nil {
		t.Errorf("no session under the token's hash: %v", err)
	}
}

func TestLoginLockout(t *testing.T) {
	t.Parallel()
	ts, clk, _ := openLocalServer(t)
	c := newBrowser(t, ts)
	for i := range 5 {
		if code, _, body := c.login("alice", "guess", ""); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i+1, code, body)
		}
	}
	// Locked: even the right password is refused, with Retry-After.
	code, _, body := c.login("alice", "alice-pw", "")
	if code != http.StatusTooManyRequests || !strings.HasPrefix(body, "Retry-After: 900\n") || !strings.Contains(body, "Too many failed sign-ins. Try again in 15 minutes.") {
		t.Errorf("locked: %d %.200s", code, body)
	}
	// Only alice is locked.
	if code, _, _ := newBrowser(t, ts).login("bob", "bob-pw", ""); code != http.StatusOK {
		t.Errorf("bob while alice is locked: %d", code)
	}
	clk.Add(15 * time.Minute)
	if code, _, _ := c.login("alice", "alice-pw", ""); code != http.StatusOK {
		t.Errorf("alice after the lockout: %d", code)
	}
}

// A restarted server keeps a lockout, and the failures that count towards
// one: they are in the store, not only in memory.
func TestLoginLockoutSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := &testClock{t: time.Now()}
	open := func() *testServer {
		return openServer(t, dir, "testdata/lessons", func(log *slog.Logger) sandbox.Provider {
			return shell.New(t.TempDir(), log)
		}, func(cfg *server.Config) {
			cfg.Auth = server.AuthLocal
			cfg.Now = clk.Now
		})
	}
	ts := open()
	createUsers(t, ts)
	c := newBrowser(t, ts)
	for i := range 5 {
		if code, _, body := c.login("alice", "guess", ""); code != http.StatusUnauthorized {
			t.Fatalf("alice failure %d: %d %.200s", i+1, code, body)
		}
	}
	for i := range 3 {
		if code, _, body := c.login("bob", "guess", ""); code != http.StatusUnauthorized {
			t.Fatalf("bob failure %d: %d %.200s", i+1, code, body)
		}
	}
	ts.Close()
	_ = ts.DB.Close()

	clk.Add(time.Minute)
	ts2 := open()
	c2 := newBrowser(t, ts2)
	if code, _, body := c2.login("alice", "alice-pw", ""); code != http.StatusTooManyRequests || !strings.HasPrefix(body, "Retry-After: 840\n") {
		t.Errorf("alice after the restart: %d %.200s, want 429 with 14 minutes left", code, body)
	}
	// bob's three failures still count: two more lock him.
	for range 2 {
		c2.login("bob", "guess", "")
	}
	if code, _, body := c2.login("bob", "bob-pw", ""); code != http.StatusTooManyRequests {
		t.Errorf("bob after 3 failures before the restart and 2 after: %d %.200s, want 429", code, body)
	}
}

func TestLoginLockoutPerAddress(t *testing.T) {
	t.Parallel()
	ts, _, _ := openLocalServer(t)
	c := newBrowser(t, ts)
	// 20 failures from one address, over many usernames (none locked).
	for i := range 20 {
		name := []string{"alice", "bob", "ines", "x"}[i%4]
		if code, _, _ := c.login(name, "guess", ""); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, code)
		}
	}
	if code, _, body := c.login("bob", "bob-pw", ""); code != http.StatusTooManyRequests || !strings.HasPrefix(body, "Retry-After: ") {
		t.Errorf("address locked: %d %.100s", code, body)
	}
}

func TestCSRFTokenRequiredWithAuthLocal(t *testing.T) {
	t.Parallel()
	ts, _, _ := openLocalServer(t)
	c := newBrowser(t, ts)

	// The login form itself.
	c.get("/login")
	code, _, body := c.postForm("/login", url.Values{"username": {"alice"}, "password": {"alice-pw"}})
	if code != http.StatusForbidden || !strings.Contains(body, "CSRF token") {
		t.Errorf("login without a token: %d %.200s", code, body)
	}
	if code, _, _ := c.login("alice", "alice-pw", ""); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}
	good := c.csrf
	c.csrf = ""
	if code, body := c.post("/api/lessons/demo/hello/hint", "application/json", `{"step":1,"index":0}`); code != http.StatusForbidden {
		t.Errorf("API POST without a token: %d %s", code, body)
	}
	code, _, _ = c.postForm("/logout", url.Values{})
	if code != http.StatusForbidden {
		t.Errorf("logout without a token: %d", code)
	}
	c.csrf = good
	if code, body := c.post("/api/lessons/demo/hello/hint", "application/json", `{"step":1,"index":0}`); code != http.StatusOK {
		t.Errorf("API POST with the token: %d %s", code, body)
	}
}

func TestRolesEnforced(t *testing.T) {
	t.Parallel()
	ts, _, _ := openLocalServer(t)
	learner, instructor := newBrowser(t, ts), newBrowser(t, ts)
	if code, body := learner.get("/api/admin/users"); code != http.StatusUnauthorized {
		t.Errorf("signed out: %d %s; want 401", code, body)
	}
	learner.login("alice", "alice-pw", "")
	instructor.login("ines", "ines-pw", "")
	if code, body := learner.get("/api/admin/users"); code != http.StatusForbidden || !strings.Contains(apiError(body), "instructor role") {
		t.Errorf("learner: %d %s; want 403", code, body)
	}
	code, body := instructor.get("/api/admin/users")
	var list struct{ Users []map[string]any }
	_ = json.Unmarshal(body, &list)
	if code != http.StatusOK || len(list.Users) != 3 || list.Users[0]["username"] != "alice" {
		t.Errorf("instructor: %d %s", code, body)
	}
	if strings.Contains(string(body), "argon2") {
		t.Error("the user list leaks password hashes")
	}
}

func TestProgressIsPerLearner(t *testing.T) {
	t.Parallel()
	ts, _, _ := openLocalServer(t)
	alice, bob := newBrowser(t, ts), newBrowser(t, ts)
	alice.login("alice", "alice-pw", "")
	bob.login("bob", "bob-pw", "")
	if code, res := alice.check("demo/hello", `{"step":2,"answers":{"store":[0]}}`); code != 200 || !res.Passed {
		t.Fatalf("alice's check: %d %+v", code, res)
	}
	if _, b := alice.get("/api/progress"); !strings.Contains(string(b), `"lesson":"demo/hello","step":2,"passed":true`) {
		t.Errorf("alice's progress lacks her pass: %s", b)
	}
	// Bob's progress is his own: there is no way to name another learner.
	if _, b := bob.get("/api/progress"); strings.Contains(string(b), `"passed":true`) {
		t.Errorf("bob sees a pass he did not make: %s", b)
	}
	if _, b := bob.get("/api/progress?learner=" + alice.learnerID(t)); strings.Contains(string(b), `"passed":true`) {
		t.Errorf("bob reads alice's progress by asking: %s", b)
	}
}

// learnerID is the learner ID the server reports for this client.
func (c *client) learnerID(t *testing.T) string {
	_, b := c.get("/api/progress")
	var p struct{ Learner string }
	if err := json.Unmarshal(b, &p); err != nil || p.Learner == "" {
		t.Fatalf("progress %s: %v", b, err)
	}
	return p.Learner
}

func TestLogoutRevokesSession(t *testing.T) {
	t.Parallel()
	ts, _, _ := openLocalServer(t)
	c := newBrowser(t, ts)
	c.login("alice", "alice-pw", "")
	old := c.cookie()
	code, path, _ := c.postForm("/logout", url.Values{"csrf_token": {c.csrf}})
	if code != http.StatusOK || path != "/login" {
		t.Errorf("logout: %d at %s", code, path)
	}
	// The old cookie, replayed, is refused.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/progress", nil)
	req.AddCookie(&http.Cookie{Name: server.SessionCookie, Value: old})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("old cookie after logout: %d, want 401", res.StatusCode)
	}
	s, err := ts.DB.Session(t.Context(), auth.TokenHash(old))
	if err != nil || s.RevokedAt.IsZero() {
		t.Errorf("session after logout: %+v %v; want revoked", s, err)
	}
}

func TestSessionExpires(t *testing.T) {
	t.Parallel()
	ts, clk, _ := openLocalServer(t)
	c := newBrowser(t, ts)
	c.login("alice", "alice-pw", "")
	clk.Add(12*time.Hour - time.Second)
	if code, _ := c.get("/api/progress"); code != http.StatusOK {
		t.Errorf("just before expiry: %d", code)
	}
	clk.Add(time.Second)
	if code, _ := c.get("/api/progress"); code != http.StatusUnauthorized {
		t.Errorf("at expiry: %d, want 401", code)
	}
}

func TestRevokedSessionsAreRefused(t *testing.T) {
	t.Parallel()
	ts, _, users := openLocalServer(t)
	c := newBrowser(t, ts)
	c.login("alice", "alice-pw", "")
	if n, err := ts.DB.RevokeUserSessions(t.Context(), users["alice"].ID); err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	if code, _ := c.get("/api/progress"); code != http.StatusUnauthorized {
		t.Errorf("after revoke-sessions: %d, want 401", code)
	}
}

// TestCookiesSecureOverTLS: a request that came over TLS gets Secure
// cookies, in both modes (httptest.NewRequest sets r.TLS for https URLs).
func TestCookiesSecureOverTLS(t *testing.T) {
	t.Parallel()
	anon := MustOpenServer(t, "")
	local, _, _ := openLocalServer(t)
	for _, tc := range []struct {
		name   string
		ts     *testServer
		path   string
		cookie string
	}{
		{"auth none", anon, "/", server.SessionCookie},
		{"auth local", local, "/login", server.LoginCookie},
	} {
		for _, scheme := range []string{"http", "https"} {
			rec := httptest.NewRecorder()
			tc.ts.Config.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, scheme+"://kubelab.test"+tc.path, nil))
			var got *http.Cookie
			for _, ck := range rec.Result().Cookies() {
				if ck.Name == tc.cookie {
					got = ck
				}
			}
			if got == nil || got.Secure != (scheme == "https") || !got.HttpOnly || got.SameSite != http.SameSiteLaxMode {
				t.Errorf("%s over %s: cookie %+v", tc.name, scheme, got)
			}
		}
	}
}

// TestTerminalIsPerUser: the terminal socket names no learner; each signed-in
// user reaches only their own sandbox, so bob never sees alice's shell.
func TestTerminalIsPerUser(t *testing.T) {
	t.Parallel()
	ts, _, _ := openLocalServer(t)
	alice, bob := newBrowser(t, ts), newBrowser(t, ts)
	alice.login("alice", "alice-pw", "")
	bob.login("bob", "bob-pw", "")

	at, _, err := alice.dialTerminal("tab=0&lesson=demo/hello", "")
	if err != nil {
		t.Fatal(err)
	}
	at.waitStatus("ready")
	at.typeText("echo alice-$((6*7)) > ~/mine.txt; echo wrote-$((6*7))\n")
	at.waitOutput("wrote-42")

	bt, _, err := bob.dialTerminal("tab=0&lesson=demo/hello", "")
	if err != nil {
		t.Fatal(err)
	}
	bt.waitStatus("ready")
	bt.typeText("cat ~/mine.txt 2>&1; echo bob-$((6*7))\n")
	bt.waitOutput("bob-42")
	if out := bt.output(); strings.Contains(out, "alice-42") || strings.Contains(out, "wrote-42") {
		t.Errorf("bob's terminal shows alice's work:\n%s", out)
	}
}

func TestLoginFormSizeCapped(t *testing.T) {
	t.Parallel()
	ts, _, _ := openLocalServer(t)
	c := newBrowser(t, ts)
	c.get("/login")
	code, _, _ := c.postForm("/login", url.Values{"csrf_token": {c.csrf}, "username": {"alice"}, "password": {strings.Repeat("x", 64<<10)}})
	if code != http.StatusForbidden {
		t.Errorf("a 64 KiB login form: %d, want 403 (the form is not read past 16 KiB)", code)
	}
}
