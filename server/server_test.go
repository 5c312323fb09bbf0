package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kubelab/checker"
	"kubelab/lessons"
	"kubelab/sandbox"
	"kubelab/sandbox/shell"
	"kubelab/server"
	"kubelab/server/store"
	"kubelab/server/terminal"
)

// testServer is a real kubelab server on a random port: real SQLite file,
// real lessons parsed from testdata, the real shell provider.
type testServer struct {
	*httptest.Server
	DB      *store.DB
	DataDir string
	Manager *sandbox.Manager
}

// MustOpenServer starts a server over dataDir (a new temp dir if "") on
// the shell provider with the lessons of testdata/lessons.
func MustOpenServer(t testing.TB, dataDir string) *testServer {
	t.Helper()
	return openServer(t, dataDir, "testdata/lessons", func(log *slog.Logger) sandbox.Provider {
		return shell.New(t.TempDir(), log)
	})
}

// openServer starts a real server: a SQLite store in dataDir, the lessons
// of lessonsDir, and the provider newProvider makes, with a registry so
// that sandbox records are kept as in production.
// opts adjust the server's Config (auth mode, clock).
func openServer(t testing.TB, dataDir, lessonsDir string, newProvider func(*slog.Logger) sandbox.Provider, opts ...func(*server.Config)) *testServer {
	t.Helper()
	return openServerWith(t, dataDir, lessonsDir, newProvider, sandbox.ManagerOptions{}, opts...)
}

// openServerWith is openServer with the sandbox Manager's options mopts
// (its logger and registry are set here).
func openServerWith(t testing.TB, dataDir, lessonsDir string, newProvider func(*slog.Logger) sandbox.Provider, mopts sandbox.ManagerOptions, opts ...func(*server.Config)) *testServer {
	t.Helper()
	ctx := context.Background()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	db, err := store.Open(ctx, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := lessons.DirSource(lessonsDir)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := lessons.NewLibrary(ctx, []lessons.Source{src}, lessons.Options{CompileCheck: checker.Compile}, false)
	if err != nil {
		t.Fatal(err)
	}
	provider := newProvider(log)
	mopts.Logger, mopts.Registry = log, server.SandboxRegistry(db, provider.Name())
	mgr := sandbox.NewManager(provider, mopts)
	hub := terminal.NewHub(terminal.Options{Grace: time.Minute, Logger: log})
	cfg := server.Config{Web: os.DirFS("../web"), Logger: log}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.Auth != "" && cfg.Auth != server.AuthNone && cfg.Accounts == nil {
		cfg.Accounts = db
	}
	srv, err := server.New(cfg, lib, db, mgr, hub)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_ = hub.Shutdown(sctx)
		_ = mgr.Shutdown(sctx)
		// A durable provider's sandboxes outlive Shutdown: delete what this
		// server made.
		if recs, err := server.SandboxRegistry(db, provider.Name()).Sandboxes(sctx); err == nil {
			for _, r := range recs {
				_ = provider.Delete(sctx, r.ID)
			}
		}
		_ = db.Close()
	})
	return &testServer{Server: ts, DB: db, DataDir: dataDir, Manager: mgr}
}

// client is a browser-like HTTP client with a cookie jar. Like app.js, it
// sends the CSRF token of the last page it loaded with every POST.
type client struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func newClient(t *testing.T, ts *testServer) *client {
	jar, _ := cookiejar.New(nil)
	c := &client{t: t, base: ts.URL, http: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
	c.get("/") // first visit sets the session cookie
	return c
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)

func (c *client) get(path string) (int, []byte) {
	c.t.Helper()
	res, err := c.http.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if m := csrfMeta.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return res.StatusCode, b
}

func (c *client) post(path, contentType, body string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func (c *client) check(lesson string, body string) (int, server.CheckResponse) {
	c.t.Helper()
	code, b := c.post("/api/lessons/"+lesson+"/check", "application/json", body)
	var resp server.CheckResponse
	if code == http.StatusOK {
		if err := json.Unmarshal(b, &resp); err != nil {
			c.t.Fatalf("check response %s: %v", b, err)
		}
	}
	return code, resp
}

func (c *client) cookie() string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == server.SessionCookie {
			return ck.Value
		}
	}
	c.t.Fatal("no session cookie")
	return ""
}

// wsTerm is a websocket terminal client that collects output.
type wsTerm struct {
	t    *testing.T
	conn *websocket.Conn
	mu   sync.Mutex
	out  bytes.Buffer
	msgs []map[string]any
	done chan struct{}
}

func (c *client) dialTerminal(query string, origin string) (*wsTerm, *http.Response, error) {
	u := strings.Replace(c.base, "http://", "ws://", 1) + "/ws/terminal?" + query
	h := http.Header{}
	if origin == "" {
		origin = c.base
	}
	h.Set("Origin", origin)
	if ck := c.http.Jar.Cookies(mustURL(c.base)); len(ck) > 0 {
		h.Set("Cookie", server.SessionCookie+"="+c.cookie())
	}
	conn, res, err := websocket.DefaultDialer.Dial(u, h)
	if err != nil {
		return nil, res, err
	}
	w := &wsTerm{t: c.t, conn: conn, done: make(chan struct{})}
	go w.readLoop()
	c.t.Cleanup(func() { conn.Close() })
	return w, res, nil
}

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }

func (w *wsTerm) readLoop() {
	defer close(w.done)
	for {
		typ, data, err := w.conn.ReadMessage()
		if err != nil {
			return
		}
		w.mu.Lock()
		if typ == websocket.BinaryMessage {
			w.out.Write(data)
		} else {
			var m map[string]any
			if json.Unmarshal(data, &m) == nil {
				w.msgs = append(w.msgs, m)
			}
		}
		w.mu.Unlock()
	}
}

// waitFor polls until cond holds over the output and messages.
func (w *wsTerm) waitFor(what string, cond func(out string, msgs []map[string]any) bool) {
	w.t.Helper()
	w.waitForWithin(what, 20*time.Second, cond)
}

func (w *wsTerm) waitForWithin(what string, limit time.Duration, cond func(out string, msgs []map[string]any) bool) {
	w.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		ok := cond(w.out.String(), w.msgs)
		w.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Fatalf("timed out waiting for %s; output so far:\n%s\nmessages: %v", what, w.out.String(), w.msgs)
}

func (w *wsTerm) waitOutput(s string) {
	w.t.Helper()
	w.waitFor("output "+s, func(out string, _ []map[string]any) bool { return strings.Contains(out, s) })
}

func (w *wsTerm) waitStatus(state string) map[string]any {
	w.t.Helper()
	var found map[string]any
	w.waitFor("status "+state, func(_ string, msgs []map[string]any) bool {
		for _, m := range msgs {
			if m["type"] == "status" && m["state"] == state {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func (w *wsTerm) typeText(s string) {
	w.t.Helper()
	if err := w.conn.WriteMessage(websocket.BinaryMessage, []byte(s)); err != nil {
		w.t.Fatal(err)
	}
}

// output is everything the terminal printed so far.
func (w *wsTerm) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

func (w *wsTerm) waitOutputLong(s string, limit time.Duration) {
	w.t.Helper()
	w.waitForWithin("output "+s, limit, func(out string, _ []map[string]any) bool { return strings.Contains(out, s) })
}

// waitForLong waits for a status state, failing early on an error status.
func (w *wsTerm) waitForLong(state string, limit time.Duration) {
	w.t.Helper()
	w.waitForWithin("status "+state, limit, func(_ string, msgs []map[string]any) bool {
		for _, m := range msgs {
			if m["type"] == "status" && m["state"] == "error" {
				w.t.Fatalf("sandbox failed: %v", m["message"])
			}
			if m["type"] == "status" && m["state"] == state {
				return true
			}
		}
		return false
	})
}
