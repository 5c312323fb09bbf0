package terminal

import (
	"bytes"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// watch dials key's terminal as a watcher.
func (s *server) watch(t *testing.T, key Key) *ws {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: waitLong}
	conn, resp, err := d.Dial(s.url(key)+"&watch=1", nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("watch %v: %v (HTTP %d)", key, err, status)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &ws{t: t, conn: conn}
}

// eventually polls cond until it holds, failing after waitLong.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatcherGetsScrollbackThenLiveOutput(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	key := Key{"ada", 0}
	learner := s.dial(t, key, nil)
	learner.expectStatus(StateReady)
	before, cmd := marker("before")
	learner.typeLine(cmd)
	learner.expect(before)

	w := s.watch(t, key)
	st := w.expectStatus(StateReady)
	if st.Message != msgWatching {
		t.Errorf("watcher's ready status = %q", st.Message)
	}
	if !bytes.Contains(w.out.Bytes(), []byte(before)) {
		t.Errorf("the watcher's replay lacks the earlier output %q; got:\n%s", before, w.out.String())
	}
	live, cmd := marker("live")
	learner.typeLine(cmd)
	w.expect(live)
	if s.opens.Load() != 1 {
		t.Errorf("%d terminals opened, want 1", s.opens.Load())
	}
}

// TestWatcherIsReadOnly: what a watcher types or resizes never reaches the
// shell; it is dropped and counted.
func TestWatcherIsReadOnly(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	key := Key{"ada", 0}
	learner := s.dial(t, key, nil)
	learner.expectStatus(StateReady)
	w := s.watch(t, key)
	w.expectStatus(StateReady)

	typed, cmd := marker("watcher")
	w.typeLine(cmd)
	w.resize(111, 33)
	sent := int64(len(cmd) + 1 + len(`{"type":"resize","cols":111,"rows":33}`))
	eventually(t, "the watcher's input to be dropped", func() bool { return s.hub.DroppedWatchInput() >= sent })

	done, cmd := marker("learner")
	learner.typeLine("stty size; " + cmd)
	learner.expect(done)
	w.expect(done)
	for name, out := range map[string]string{"learner": learner.out.String(), "watcher": w.out.String()} {
		if strings.Contains(out, typed) || strings.Contains(out, "echo "+typed[:len(typed)/2]) {
			t.Errorf("the watcher's command reached the shell; %s's output:\n%s", name, out)
		}
		if !strings.Contains(out, "24 80") || strings.Contains(out, "33 111") {
			t.Errorf("the terminal is not 80x24 as the learner left it; %s's output:\n%s", name, out)
		}
	}
	if n := s.hub.DroppedWatchInput(); n != sent {
		t.Errorf("DroppedWatchInput() = %d, want %d", n, sent)
	}
}

// TestWatcherWaitsForSession: watching a terminal that is not open opens
// nothing; the watcher waits and attaches when the owner opens it.
func TestWatcherWaitsForSession(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	key := Key{"ada", 2}
	w := s.watch(t, key)
	if st := w.expectStatus(StateWaiting); st.Message != msgWatchWaiting {
		t.Errorf("waiting status = %q", st.Message)
	}
	// Another owner's terminal opening does not attach the watcher to it.
	other := s.dial(t, Key{"bob", 2}, nil)
	other.expectStatus(StateReady)
	time.Sleep(100 * time.Millisecond)
	if sess, _ := s.hub.Session(Key{"bob", 2}); sess.Watchers() != 0 {
		t.Error("the watcher attached to another owner's terminal")
	}
	if n := s.opens.Load(); n != 1 {
		t.Fatalf("%d terminals opened, want only bob's", n)
	}
	if _, ok := s.hub.Session(key); ok {
		t.Fatal("watching opened a session")
	}

	learner := s.dial(t, key, nil)
	learner.expectStatus(StateReady)
	w.expectStatus(StateReady)
	word, cmd := marker("late")
	learner.typeLine(cmd)
	w.expect(word)
	if got := s.hub.Tabs("ada"); len(got) != 1 || got[0] != 2 {
		t.Errorf("Tabs(ada) = %v, want [2]", got)
	}
}

// TestSlowWatcherDoesNotHoldTheTerminal: a watcher that never reads is
// dropped at once, never waited for, and the learner's terminal goes on.
func TestSlowWatcherDoesNotHoldTheTerminal(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	// Sockets are waited for this long: were a watcher waited for like a
	// socket, the output below would stall for an hour.
	s.hub.patience = time.Hour
	key := Key{"ada", 0}
	learner := s.dial(t, key, nil)
	learner.expectStatus(StateReady)
	w := s.watch(t, key)
	w.expectStatus(StateReady) // attached; from now on it reads nothing
	sess, _ := s.hub.Session(key)
	if n := sess.Watchers(); n != 1 {
		t.Fatalf("Watchers() = %d, want 1", n)
	}

	word, cmd := marker("done")
	start := time.Now()
	learner.typeLine("head -c 20000000 /dev/zero | tr '\\0' x; " + cmd)
	learner.expect(word)
	// Waited for, the watcher would stall the output until its socket's
	// write timed out.
	if took := time.Since(start); took >= writeWait {
		t.Errorf("the output took %v with a slow watcher", took)
	}
	if n := bytes.Count(learner.out.Bytes(), []byte("x")); n < 20000000 {
		t.Errorf("learner got %d x's, want 20000000", n)
	}
	eventually(t, "the slow watcher to be dropped", func() bool { return sess.Watchers() == 0 })
	after, cmd := marker("after")
	learner.typeLine(cmd)
	learner.expect(after)
	// The watcher is told to reconnect to catch up.
	if code := w.expectClose(); code != websocket.CloseTryAgainLater {
		t.Errorf("slow watcher closed with %d, want %d", code, websocket.CloseTryAgainLater)
	}
}

func TestWatcherGetsExit(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	key := Key{"ada", 0}
	learner := s.dial(t, key, nil)
	learner.expectStatus(StateReady)
	w := s.watch(t, key)
	w.expectStatus(StateReady)
	learner.typeLine("exit 3")
	if code := w.expectClose(); code != websocket.CloseNormalClosure {
		t.Errorf("watcher closed with %d, want 1000", code)
	}
	if w.exit == nil || *w.exit != 3 {
		t.Errorf("watcher's exit = %v, want 3", w.exit)
	}
}

func TestWatchOriginRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	h := http.Header{"Origin": {"https://evil.example"}}
	_, resp, err := websocket.DefaultDialer.Dial(s.url(Key{"ada", 0})+"&watch=1", h)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("watch from a foreign origin: %v, %v; want 403", resp, err)
	}
}

// TestWatchersLeaveNothingBehind: watchers that come and go, attached or
// waiting, leave no goroutine, socket or subscription. Not parallel: it
// counts the process's goroutines.
func TestWatchersLeaveNothingBehind(t *testing.T) {
	s := newServer(t, Options{})
	key := Key{"ada", 0}
	learner := s.dial(t, key, nil)
	learner.expectStatus(StateReady)
	sess, _ := s.hub.Session(key)
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()

	var watchers []*ws
	for range 5 {
		w := s.watch(t, key)
		w.expectStatus(StateReady)
		watchers = append(watchers, w)
	}
	waiting := s.watch(t, Key{"ada", 5})
	waiting.expectStatus(StateWaiting)
	if n := sess.Watchers(); n != 5 {
		t.Fatalf("Watchers() = %d, want 5", n)
	}
	if _, sockets := s.hub.Stats(); sockets != 7 {
		t.Fatalf("sockets = %d, want 7", sockets)
	}
	for _, w := range append(watchers, waiting) {
		_ = w.conn.Close()
	}
	eventually(t, "the watchers to be gone", func() bool {
		_, sockets := s.hub.Stats()
		return sess.Watchers() == 0 && sockets == 1
	})
	eventually(t, "the watchers' goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
	// The learner's terminal is untouched.
	word, cmd := marker("still")
	learner.typeLine(cmd)
	learner.expect(word)
}
