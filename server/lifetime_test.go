package server_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/shell"
)

// sandboxState is GET /api/sandbox.
type sandboxState struct {
	Sandbox *struct {
		ID             string    `json:"id"`
		ExpiresAt      time.Time `json:"expires_at"`
		SecondsLeft    int64     `json:"seconds_left"`
		WarnSeconds    int64     `json:"warn_seconds"`
		ExtendSeconds  int64     `json:"extend_seconds"`
		ExtensionsLeft int       `json:"extensions_left"`
	} `json:"sandbox"`
	Refused *struct {
		Error             string `json:"error"`
		RetryAfterSeconds int    `json:"retry_after_seconds"`
	} `json:"refused"`
}

func (c *client) sandboxState() sandboxState {
	c.t.Helper()
	code, body := c.get("/api/sandbox")
	if code != http.StatusOK {
		c.t.Fatalf("GET /api/sandbox = %d %s", code, body)
	}
	var st sandboxState
	if err := json.Unmarshal(body, &st); err != nil {
		c.t.Fatalf("GET /api/sandbox: %v: %s", err, body)
	}
	return st
}

func shellProvider(t testing.TB) func(*slog.Logger) sandbox.Provider {
	return func(log *slog.Logger) sandbox.Provider { return shell.New(t.TempDir(), log) }
}

// TestSandboxLifetimeAndExtend: the page learns when the sandbox ends and
// extends it, as many times as allowed, then gets a 409 that says why.
func TestSandboxLifetimeAndExtend(t *testing.T) {
	t.Parallel()
	ts := openServerWith(t, "", "testdata/lessons", shellProvider(t),
		sandbox.ManagerOptions{MaxLifetime: 2 * time.Hour, ExtendBy: 30 * time.Minute, MaxExtensions: 1})
	c := newClient(t, ts)
	if st := c.sandboxState(); st.Sandbox != nil || st.Refused != nil {
		t.Fatalf("before any terminal: %+v, want no sandbox and no refusal", st)
	}
	if code, body := c.post("/api/sandbox/extend", "application/json", "{}"); code != http.StatusNotFound {
		t.Errorf("extend without a sandbox = %d %s, want 404", code, body)
	}
	term, _, err := c.dialTerminal("tab=0&lesson=demo/hello", "")
	if err != nil {
		t.Fatal(err)
	}
	term.waitStatus("ready")
	st := c.sandboxState()
	if st.Sandbox == nil || st.Sandbox.ExtensionsLeft != 1 || st.Sandbox.WarnSeconds != 15*60 || st.Sandbox.ExtendSeconds != 30*60 {
		t.Fatalf("with a sandbox: %+v", st.Sandbox)
	}
	if left := st.Sandbox.SecondsLeft; left > 2*3600 || left < 2*3600-60 {
		t.Errorf("seconds_left = %d, want about 7200", left)
	}
	before := st.Sandbox.ExpiresAt

	code, body := c.post("/api/sandbox/extend", "application/json", "{}")
	if code != http.StatusOK {
		t.Fatalf("extend = %d %s", code, body)
	}
	var ext sandboxState
	if err := json.Unmarshal(body, &ext); err != nil || ext.Sandbox == nil {
		t.Fatalf("extend answer %s: %v", body, err)
	}
	if got := ext.Sandbox.ExpiresAt.Sub(before); got != 30*time.Minute || ext.Sandbox.ExtensionsLeft != 0 {
		t.Errorf("extension moved the end by %v with %d left, want 30m and 0", got, ext.Sandbox.ExtensionsLeft)
	}
	code, body = c.post("/api/sandbox/extend", "application/json", "{}")
	if code != http.StatusConflict || !strings.Contains(string(body), "no extension left") {
		t.Errorf("extend past the limit = %d %s, want 409 saying no extension is left", code, body)
	}
	// The extension is kept with the sandbox's record (a restart keeps it).
	recs, err := ts.DB.Sandboxes(t.Context())
	if err != nil || len(recs) != 1 || !recs[0].ExpiresAt.Equal(ext.Sandbox.ExpiresAt) {
		t.Errorf("stored records %+v (%v), want one expiring at %v", recs, err, ext.Sandbox.ExpiresAt)
	}
}

// TestTooManySandboxesIs429: a learner over their creations per window is
// refused before the websocket upgrade with 429 and Retry-After, and the
// page can read why from GET /api/sandbox.
func TestTooManySandboxesIs429(t *testing.T) {
	t.Parallel()
	ts := openServerWith(t, "", "testdata/lessons", shellProvider(t),
		sandbox.ManagerOptions{MaxCreationsPerOwner: 1, CreationWindow: time.Hour})
	c := newClient(t, ts)
	term, _, err := c.dialTerminal("tab=0&lesson=demo/hello", "")
	if err != nil {
		t.Fatal(err)
	}
	term.waitStatus("ready")
	learner := c.cookie()
	if err := ts.Manager.Release(t.Context(), learner); err != nil {
		t.Fatal(err)
	}
	_, res, err := c.dialTerminal("tab=1&lesson=demo/hello", "")
	if err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second sandbox in the window: err %v, response %v; want 429", err, res)
	}
	secs, convErr := strconv.Atoi(res.Header.Get("Retry-After"))
	if convErr != nil || secs < 3500 || secs > 3600 {
		t.Errorf("Retry-After = %q, want about 3600 s", res.Header.Get("Retry-After"))
	}
	st := c.sandboxState()
	if st.Refused == nil || !strings.Contains(st.Refused.Error, "Too many sandboxes") || st.Refused.RetryAfterSeconds < 3500 {
		t.Errorf("GET /api/sandbox refusal = %+v", st.Refused)
	}
	// Another learner is not affected.
	other := newClient(t, ts)
	term2, _, err := other.dialTerminal("tab=0&lesson=demo/hello", "")
	if err != nil {
		t.Fatalf("another learner: %v", err)
	}
	term2.waitStatus("ready")
}

// TestRestoreProgressAfterCull: a learner passed a step; their sandbox is
// culled; when they come back, the page says their progress is being
// restored, and the step's check passes in the new sandbox without them
// doing anything again.
func TestRestoreProgressAfterCull(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	c := newClient(t, ts)
	term, _, err := c.dialTerminal("tab=0&lesson=demo/hello", "")
	if err != nil {
		t.Fatal(err)
	}
	term.waitStatus("ready")
	for _, m := range term.messages() {
		if msg, _ := m["message"].(string); strings.Contains(msg, "Restoring") {
			t.Fatalf("a first sandbox has nothing to restore, got status %v", m)
		}
	}
	term.typeText(`echo "hello kubelab" > ~/greeting.txt; echo ok-$((6*7))` + "\n")
	term.waitOutput("ok-42")
	if code, res := c.check("demo/hello", `{"step":1}`); code != 200 || !res.Passed {
		t.Fatalf("check after the work: %d %+v", code, res)
	}
	old, _ := ts.Manager.Lookup(c.cookie())
	if err := ts.Manager.Release(t.Context(), c.cookie()); err != nil { // as the idle cull does
		t.Fatal(err)
	}
	term.conn.Close()

	term, _, err = c.dialTerminal("tab=1&lesson=demo/hello", "")
	if err != nil {
		t.Fatal(err)
	}
	term.waitStatus("ready")
	restoring := false
	for _, m := range term.messages() {
		if msg, _ := m["message"].(string); strings.HasPrefix(msg, "Restoring your progress: step 1 of 1") {
			restoring = true
		}
	}
	if !restoring {
		t.Errorf("no \"Restoring your progress\" status; messages: %v", term.messages())
	}
	if sb, _ := ts.Manager.Lookup(c.cookie()); sb == nil || sb.ID() == old.ID() {
		t.Fatalf("want a new sandbox after the cull")
	}
	if code, res := c.check("demo/hello", `{"step":1}`); code != 200 || !res.Passed {
		t.Fatalf("check in the new sandbox, after the replay: %d %+v", code, res)
	}
	term.typeText("cat ~/greeting.txt\n")
	term.waitOutput("hello kubelab")
}

// messages are the JSON messages received so far.
func (w *wsTerm) messages() []map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]map[string]any(nil), w.msgs...)
}
