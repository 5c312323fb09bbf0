package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kubelab/server/store"
)

// dialWatch opens the read-only watch socket of learner's tab as this
// browser, with its cookies and its own origin.
func (c *client) dialWatch(learner string, tab int) (*wsTerm, *http.Response, error) {
	u := strings.Replace(c.base, "http://", "ws://", 1) + fmt.Sprintf("/ws/watch?learner=%s&tab=%d", learner, tab)
	h := http.Header{"Origin": {c.base}}
	var cookies []string
	for _, ck := range c.http.Jar.Cookies(mustURL(c.base)) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	if len(cookies) > 0 {
		h.Set("Cookie", strings.Join(cookies, "; "))
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

// TestWatchRolesEnforced: only instructors (and admins) see a learner's
// terminal; learners get 403 on the page and the socket, signed-out
// browsers are sent to sign in.
func TestWatchRolesEnforced(t *testing.T) {
	t.Parallel()
	ts, _, users := openLocalServer(t)
	alice, bob := users["alice"].ID, users["bob"].ID

	signedOut := newBrowser(t, ts)
	if code, path, _ := signedOut.getPage("/watch/" + alice); code != http.StatusOK || path != "/login" {
		t.Errorf("signed out: page ended at %d %s; want the login page", code, path)
	}
	if _, res, err := signedOut.dialWatch(alice, 0); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("signed out: socket %v, %v; want 401", res, err)
	}

	learner := newBrowser(t, ts)
	learner.login("alice", "alice-pw", "")
	// alice has a terminal open: bob, a learner, must not see it.
	bobBrowser := newBrowser(t, ts)
	bobBrowser.login("bob", "bob-pw", "")
	bt, _, err := bobBrowser.dialTerminal("tab=0", "")
	if err != nil {
		t.Fatal(err)
	}
	bt.waitStatus("ready")
	bt.typeText("echo secret-$((6*7))\n")
	bt.waitOutput("secret-42")
	for _, id := range []string{bob, alice} {
		code, _, body := learner.getPage("/watch/" + id)
		if code != http.StatusForbidden || !strings.Contains(body, "instructor role") || strings.Contains(body, "watch.js") {
			t.Errorf("learner: page /watch/%s: %d; want 403 without the terminal:\n%s", id, code, body)
		}
		w, res, err := learner.dialWatch(id, 0)
		if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
			t.Errorf("learner: socket of %s: %v, %v; want 403", id, res, err)
		}
		if w != nil {
			time.Sleep(200 * time.Millisecond)
			if strings.Contains(w.output(), "secret-42") {
				t.Error("a learner saw another learner's terminal")
			}
		}
	}

	instructor := newBrowser(t, ts)
	instructor.login("ines", "ines-pw", "")
	// An instructor watches only the learners of their own classrooms.
	if code, _, body := instructor.getPage("/watch/" + bob); code != http.StatusForbidden || !strings.Contains(body, "only the learners of your own classrooms") {
		t.Errorf("instructor, bob in none of her classrooms: page %d; want 403:\n%s", code, body)
	}
	_, classCode := createClass(t, instructor, `{"name":"Watched","lessons":["demo"]}`)
	join(t, bobBrowser, classCode)
	if _, err := ts.DB.CreateUser(t.Context(), "ivan", cheapHash(t, "ivan-pw"), store.RoleInstructor); err != nil {
		t.Fatal(err)
	}
	other := newBrowser(t, ts)
	other.login("ivan", "ivan-pw", "")
	if code, _, _ := other.getPage("/watch/" + bob); code != http.StatusForbidden {
		t.Errorf("another class's instructor: page %d, want 403", code)
	}
	if w, res, err := other.dialWatch(bob, 0); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("another class's instructor: socket %v, %v; want 403", res, err)
		if w != nil {
			time.Sleep(200 * time.Millisecond)
			if strings.Contains(w.output(), "secret-42") {
				t.Error("an instructor saw the terminal of a learner of another class")
			}
		}
	}
	code, _, body := instructor.getPage("/watch/" + bob)
	if code != http.StatusOK || !strings.Contains(body, `data-learner="`+bob+`"`) || !strings.Contains(body, "bob’s terminal") {
		t.Errorf("instructor: page: %d\n%s", code, body)
	}
	if !strings.Contains(body, `aria-current="page">Terminal 1</a>`) {
		t.Errorf("instructor: the page does not list bob's open tab:\n%s", body)
	}
	if code, _, body := instructor.getPage("/watch/" + bob + "?tab=3"); code != http.StatusOK || !strings.Contains(body, "Terminal 4 (not open)") {
		t.Errorf("instructor: page of a closed tab: %d\n%s", code, body)
	}
	for path, want := range map[string]int{
		"/watch/not-a-learner":                    http.StatusBadRequest,
		"/watch/" + strings.Repeat("0", 32):       http.StatusNotFound,
		"/watch/" + bob + "?tab=" + "99":          http.StatusBadRequest,
		"/watch/" + bob + "?tab=" + "-1":          http.StatusBadRequest,
		"/watch/" + bob + "?tab=" + "not-a-count": http.StatusBadRequest,
	} {
		if code, _, body := instructor.getPage(path); code != want {
			t.Errorf("instructor: %s: %d, want %d\n%s", path, code, want, body)
		}
	}
	w, _, err := instructor.dialWatch(bob, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.waitStatus("ready")
	w.waitOutput("secret-42")
}

func TestWatchRefusedWithoutAccounts(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	anon := newClient(t, ts)
	id := anon.cookie()
	if code, _ := anon.get("/watch/" + id); code != http.StatusForbidden {
		t.Errorf("anonymous: page %d, want 403", code)
	}
	if _, res, err := anon.dialWatch(id, 0); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous: socket %v, %v; want 403", res, err)
	}
}

// TestWatchIsReadOnlyAndLive: an instructor sees the learner's scrollback
// and then what they do, live; what the instructor types never reaches
// the learner's shell.
func TestWatchIsReadOnlyAndLive(t *testing.T) {
	t.Parallel()
	ts, _, users := openLocalServer(t)
	alice := newBrowser(t, ts)
	alice.login("alice", "alice-pw", "")
	ines := newBrowser(t, ts)
	ines.login("ines", "ines-pw", "")
	enroll(t, ines, alice)

	at, _, err := alice.dialTerminal("tab=0&lesson=demo/hello", "")
	if err != nil {
		t.Fatal(err)
	}
	at.waitStatus("ready")
	at.typeText("echo before-$((6*7))\n")
	at.waitOutput("before-42")

	w, _, err := ines.dialWatch(users["alice"].ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.waitStatus("ready")
	w.waitOutput("before-42") // the scrollback
	w.typeText("echo watcher-$((6*7)); touch ~/watcher-was-here\n")
	if err := w.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"resize","cols":111,"rows":33}`)); err != nil {
		t.Fatal(err)
	}

	at.typeText("echo live-$((6*7))\n")
	w.waitOutput("live-42") // live
	time.Sleep(300 * time.Millisecond)
	at.typeText("ls ~/watcher-was-here 2>&1; stty size; echo end-$((6*7))\n")
	at.waitOutput("end-42")
	w.waitOutput("end-42")
	for who, out := range map[string]string{"learner": at.output(), "instructor": w.output()} {
		if strings.Contains(out, "watcher-42") || !strings.Contains(out, "No such file") {
			t.Errorf("the instructor's input reached the shell; the %s sees:\n%s", who, out)
		}
		if strings.Contains(out, "33 111") {
			t.Errorf("the instructor resized the learner's terminal; the %s sees:\n%s", who, out)
		}
	}
}

// TestWatchOpensNothing: watching a learner with no terminal open starts
// no sandbox; the watcher waits and sees the terminal once it opens.
func TestWatchOpensNothing(t *testing.T) {
	t.Parallel()
	ts, _, users := openLocalServer(t)
	bobID := users["bob"].ID
	ines := newBrowser(t, ts)
	ines.login("ines", "ines-pw", "")
	bob := newBrowser(t, ts)
	bob.login("bob", "bob-pw", "")
	enroll(t, ines, bob)
	w, _, err := ines.dialWatch(bobID, 1)
	if err != nil {
		t.Fatal(err)
	}
	w.waitStatus("waiting")
	time.Sleep(200 * time.Millisecond)
	if _, ok := ts.Manager.Lookup(bobID); ok {
		t.Fatal("watching started a sandbox for bob")
	}

	bt, _, err := bob.dialTerminal("tab=1", "")
	if err != nil {
		t.Fatal(err)
	}
	bt.waitStatus("ready")
	w.waitStatus("ready")
	bt.typeText("echo bob-$((6*7))\n")
	w.waitOutput("bob-42")
}

// getPage loads a page following redirects: status, final path, body.
func (c *client) getPage(path string) (int, string, string) {
	c.t.Helper()
	res, err := c.http.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return res.StatusCode, res.Request.URL.Path, string(b)
}

// enroll has instructor create a classroom that learners join.
func enroll(t *testing.T, instructor *client, learners ...*client) {
	t.Helper()
	_, code := createClass(t, instructor, `{"name":"Class","lessons":["demo"]}`)
	for _, l := range learners {
		join(t, l, code)
	}
}
