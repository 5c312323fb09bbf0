package terminal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kubelab/sandbox"
	"kubelab/sandbox/sandboxtest"
	"kubelab/sandbox/shell"
)

// waitLong bounds every wait: generous for a loaded machine.
const waitLong = 10 * time.Second

// server is a Hub behind a real HTTP server, opening real shells.
type server struct {
	hub   *Hub
	srv   *httptest.Server
	sb    sandbox.Sandbox
	opens atomic.Int32
	dones atomic.Int32 // sockets whose ServeWS done callback ran
	// open, when set, replaces the default opener (a shell in sb).
	open Opener
}

func newServer(t *testing.T, opts Options) *server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	prov := shell.New(t.TempDir(), opts.Logger)
	id := sandboxtest.NewID("term")
	sb, err := prov.Create(t.Context(), id, sandbox.Spec{Owner: "ada", Kind: sandbox.KindShell}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Delete(context.Background(), id) })
	s := &server{hub: NewHub(opts), sb: sb}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tab, _ := strconv.Atoi(r.URL.Query().Get("tab"))
		key := Key{Owner: r.URL.Query().Get("owner"), Tab: tab}
		if r.URL.Query().Has("watch") {
			s.hub.ServeWatch(w, r, key)
			return
		}
		s.hub.ServeWS(w, r, key, func(ctx context.Context, status func(string, string, int)) (sandbox.Terminal, error) {
			s.opens.Add(1)
			if s.open != nil {
				return s.open(ctx, status)
			}
			status(StateProgress, "Creating your sandbox", 50)
			return s.sb.OpenTerminal(ctx, 80, 24)
		}, func() { s.dones.Add(1) })
	}))
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := s.hub.Shutdown(ctx); err != nil {
			t.Errorf("hub Shutdown: %v", err)
		}
	})
	return s
}

func (s *server) url(key Key) string {
	return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/?owner=" + key.Owner + "&tab=" + strconv.Itoa(key.Tab)
}

// ws is a test's browser: a real websocket client that records what the
// server sent.
type ws struct {
	t        *testing.T
	conn     *websocket.Conn
	out      bytes.Buffer
	statuses []statusMessage
	exit     *int
	events   []string // "output", "status:<state>", "exit:<code>" in arrival order
	closed   *websocket.CloseError
}

func (s *server) dial(t *testing.T, key Key, header http.Header) *ws {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: waitLong}
	conn, resp, err := d.Dial(s.url(key), header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %v: %v (HTTP %d)", key, err, status)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &ws{t: t, conn: conn}
}

// next reads one message and records it; false once the socket closed.
func (c *ws) next() bool {
	c.t.Helper()
	if c.closed != nil {
		return false
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(waitLong))
	typ, data, err := c.conn.ReadMessage()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			c.closed = ce
			return false
		}
		c.t.Fatalf("read websocket: %v; output so far:\n%s", err, c.out.String())
	}
	switch typ {
	case websocket.BinaryMessage:
		c.out.Write(data)
		c.events = append(c.events, "output")
	case websocket.TextMessage:
		var m struct {
			Type string `json:"type"`
			statusMessage
			Code int `json:"code"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Fatalf("bad control message %q: %v", data, err)
		}
		switch m.Type {
		case "status":
			m.statusMessage.Type = "status"
			c.statuses = append(c.statuses, m.statusMessage)
			c.events = append(c.events, "status:"+m.State)
		case "exit":
			code := m.Code
			c.exit = &code
			c.events = append(c.events, "exit:"+strconv.Itoa(code))
		default:
			c.t.Fatalf("unknown control message %q", data)
		}
	}
	return true
}

// expect reads until the output contains want.
func (c *ws) expect(want string) {
	c.t.Helper()
	from := 0
	for !bytes.Contains(c.out.Bytes()[from:], []byte(want)) {
		from = max(0, c.out.Len()-len(want)+1)
		if !c.next() {
			c.t.Fatalf("socket closed (%v) before the output contained %q; output:\n%s", c.closed, want, c.out.String())
		}
	}
}

// expectStatus reads until a status of state arrived.
func (c *ws) expectStatus(state string) statusMessage {
	c.t.Helper()
	for i := 0; ; i++ {
		for _, st := range c.statuses {
			if st.State == state {
				return st
			}
		}
		if !c.next() {
			c.t.Fatalf("socket closed (%v) before status %q; got %+v", c.closed, state, c.statuses)
		}
	}
}

// expectClose reads until the server closes the socket, and returns the
// close code.
func (c *ws) expectClose() int {
	c.t.Helper()
	for c.next() {
	}
	return c.closed.Code
}

func (c *ws) typeLine(line string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.BinaryMessage, []byte(line+"\r")); err != nil {
		c.t.Fatalf("type %q: %v", line, err)
	}
}

func (c *ws) resize(cols, rows int) {
	c.t.Helper()
	msg := fmt.Sprintf(`{"type":"resize","cols":%d,"rows":%d}`, cols, rows)
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		c.t.Fatalf("resize: %v", err)
	}
}

// marker returns a unique word and a command line that prints it without
// containing it (the terminal echoes the command line).
func marker(prefix string) (word, command string) {
	word = sandboxtest.NewID(prefix)
	i := len(word) / 2
	return word, "echo " + word[:i] + "''" + word[i:]
}

func TestEcho(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	c := s.dial(t, Key{"ada", 1}, nil)
	c.expectStatus(StateReady)
	want := []string{"status:starting", "status:progress", "status:ready"}
	if got := c.events[:min(len(c.events), 3)]; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("first events = %v, want %v", got, want)
	}
	if st := c.statuses[1]; st.Message != "Creating your sandbox" || st.Percent != 50 {
		t.Errorf("progress status = %+v, want the opener's", st)
	}
	word, cmd := marker("hi")
	c.typeLine(cmd)
	c.expect(word)
	if sessions, sockets := s.hub.Stats(); sessions != 1 || sockets != 1 {
		t.Errorf("Stats() = %d sessions, %d sockets; want 1, 1", sessions, sockets)
	}
}

// TestDoneWhenSocketCloses: ServeWS returns at once (the HTTP handler's
// goroutine is freed) but its done callback, which the server uses to keep
// the sandbox from idle culling, runs only once the socket has closed.
func TestDoneWhenSocketCloses(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	c := s.dial(t, Key{"ada", 7}, nil)
	c.expectStatus(StateReady)
	word, cmd := marker("open")
	c.typeLine(cmd)
	c.expect(word)
	if n := s.dones.Load(); n != 0 {
		t.Fatalf("done ran %d times while the socket is open", n)
	}
	_ = c.conn.Close()
	deadline := time.Now().Add(waitLong)
	for s.dones.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.dones.Load(); n != 1 {
		t.Fatalf("done ran %d times after the socket closed, want 1", n)
	}
}

func TestResize(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	c := s.dial(t, Key{"ada", 1}, nil)
	// Sent while the terminal is still opening: applied once it exists.
	c.resize(101, 31)
	c.expectStatus(StateReady)
	c.typeLine(`echo "sz=$(stty size)"`)
	c.expect("sz=31 101")
	c.resize(132, 43)
	c.typeLine(`echo "sz=$(stty size)"`)
	c.expect("sz=43 132")
	// Nonsense is ignored, not fatal.
	c.resize(0, 43)
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(`{not json`)); err != nil {
		t.Fatal(err)
	}
	c.typeLine(`echo "sz=$(stty size)" "again"`)
	c.expect("sz=43 132 again")
}

func TestReconnectReplaysScrollback(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	key := Key{"ada", 2}
	first := s.dial(t, key, nil)
	first.expectStatus(StateReady)
	before, cmd := marker("before")
	first.typeLine(cmd)
	first.expect(before)
	_ = first.conn.Close() // the network drops

	second := s.dial(t, key, nil)
	second.expectStatus(StateReconnected)
	if !strings.Contains(second.out.String(), before) {
		t.Errorf("replay before the reconnected status lacks %q:\n%s", before, second.out.String())
	}
	if second.events[0] != "output" {
		t.Errorf("events = %v, want the replay first", second.events)
	}
	after, cmd := marker("after")
	second.typeLine(cmd)
	second.expect(after)
	if n := s.opens.Load(); n != 1 {
		t.Errorf("opener called %d times, want 1", n)
	}
}

func TestSecondSocketTakesOver(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	key := Key{"ada", 3}
	first := s.dial(t, key, nil)
	first.expectStatus(StateReady)
	second := s.dial(t, key, nil)
	if code := first.expectClose(); code != CloseTakenOver {
		t.Errorf("first socket closed with %d, want %d", code, CloseTakenOver)
	}
	second.expectStatus(StateReconnected)
	word, cmd := marker("second")
	second.typeLine(cmd)
	second.expect(word)
	if n := s.opens.Load(); n != 1 {
		t.Errorf("opener called %d times, want 1", n)
	}
}

func TestOrigin(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{AllowedOrigins: []string{"https://kubelab.example", "lab.example:8443"}})
	host := strings.TrimPrefix(s.srv.URL, "http://")
	tests := []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols},
		{"http://" + host, http.StatusSwitchingProtocols},
		{"https://" + host, http.StatusSwitchingProtocols},
		{"https://kubelab.example", http.StatusSwitchingProtocols},
		{"http://lab.example:8443", http.StatusSwitchingProtocols},
		{"http://evil.example", http.StatusForbidden},
		{"http://" + host + ".evil.example", http.StatusForbidden},
		{"https://kubelab.example:444", http.StatusForbidden},
		{"null", http.StatusForbidden},
	}
	for i, tt := range tests {
		h := http.Header{}
		if tt.origin != "" {
			h.Set("Origin", tt.origin)
		}
		d := websocket.Dialer{HandshakeTimeout: waitLong}
		conn, resp, err := d.Dial(s.url(Key{"origin", i}), h)
		if conn != nil {
			_ = conn.Close()
		}
		if resp == nil {
			t.Errorf("Origin %q: no response: %v", tt.origin, err)
			continue
		}
		if resp.StatusCode != tt.want {
			t.Errorf("Origin %q: HTTP %d, want %d", tt.origin, resp.StatusCode, tt.want)
		}
	}
}

func TestRefusedOriginOpensNothing(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	h := http.Header{"Origin": {"http://evil.example"}}
	_, resp, err := websocket.DefaultDialer.Dial(s.url(Key{"ada", 1}), h)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial with a hostile Origin: %v, %v; want 403", resp, err)
	}
	if n := s.opens.Load(); n != 0 {
		t.Errorf("opener called %d times for a refused socket", n)
	}
}

func TestOversizeMessageClosesSocket(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{MaxMessage: 1024})
	c := s.dial(t, Key{"ada", 1}, nil)
	c.expectStatus(StateReady)
	if err := c.conn.WriteMessage(websocket.BinaryMessage, bytes.Repeat([]byte("x"), 4096)); err != nil {
		t.Fatal(err)
	}
	if code := c.expectClose(); code != websocket.CloseMessageTooBig {
		t.Errorf("close code %d, want %d", code, websocket.CloseMessageTooBig)
	}
}

func TestExitFrame(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	key := Key{"ada", 1}
	c := s.dial(t, key, nil)
	c.expectStatus(StateReady)
	c.typeLine("exit 3")
	code := c.expectClose()
	if c.exit == nil || *c.exit != 3 {
		t.Fatalf("exit message = %v, want code 3; events %v", c.exit, c.events)
	}
	if last := c.events[len(c.events)-1]; last != "exit:3" {
		t.Errorf("last message %q, want the exit message; events %v", last, c.events)
	}
	if code != websocket.CloseNormalClosure {
		t.Errorf("close code %d, want %d", code, websocket.CloseNormalClosure)
	}
	if _, ok := s.hub.Session(key); ok {
		t.Error("session still there after its shell exited")
	}
}

func TestGraceExpiryClosesPTY(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{Grace: 100 * time.Millisecond})
	key := Key{"ada", 1}
	c := s.dial(t, key, nil)
	c.expectStatus(StateReady)
	sess, ok := s.hub.Session(key)
	if !ok {
		t.Fatal("no session")
	}
	_ = c.conn.Close()
	select {
	case <-sess.Done():
	case <-time.After(waitLong):
		t.Fatal("session still alive long after the grace period")
	}
	if _, ok := s.hub.Session(key); ok {
		t.Error("hub still has the session")
	}
	// A new socket gets a new shell.
	again := s.dial(t, key, nil)
	again.expectStatus(StateReady)
	if n := s.opens.Load(); n != 2 {
		t.Errorf("opener called %d times, want 2", n)
	}
}

func TestOpenError(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	s.open = func(ctx context.Context, status func(string, string, int)) (sandbox.Terminal, error) {
		status(StateProgress, "Starting the cluster", 30)
		return nil, errors.New("Your sandbox could not start: the machine is out of disk space.")
	}
	c := s.dial(t, Key{"ada", 1}, nil)
	st := c.expectStatus(StateError)
	if st.Message != "Your sandbox could not start: the machine is out of disk space." {
		t.Errorf("error status message = %q", st.Message)
	}
	if code := c.expectClose(); code != CloseOpenFailed {
		t.Errorf("close code %d, want %d", code, CloseOpenFailed)
	}
	if sessions, _ := s.hub.Stats(); sessions != 0 {
		t.Errorf("%d sessions after a failed open", sessions)
	}
}

func TestSocketWaitsForOpeningInAnotherWindow(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	release := make(chan struct{})
	s.open = func(ctx context.Context, status func(string, string, int)) (sandbox.Terminal, error) {
		status(StateProgress, "Creating your sandbox", 10)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return s.sb.OpenTerminal(ctx, 80, 24)
	}
	key := Key{"ada", 1}
	first := s.dial(t, key, nil)
	first.expectStatus(StateProgress)
	second := s.dial(t, key, nil)
	st := second.expectStatus(StateStarting)
	if st.Message != "This terminal is starting in another window." {
		t.Errorf("second socket's status = %+v", st)
	}
	close(release)
	first.expectStatus(StateReady)
	second.expectStatus(StateReconnected)
	if code := first.expectClose(); code != CloseTakenOver {
		t.Errorf("first socket closed with %d, want %d", code, CloseTakenOver)
	}
	if n := s.opens.Load(); n != 1 {
		t.Errorf("opener called %d times, want 1", n)
	}
}

func TestCloseOwner(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	a := s.dial(t, Key{"ada", 1}, nil)
	a.expectStatus(StateReady)
	b := s.dial(t, Key{"bob", 1}, nil)
	b.expectStatus(StateReady)
	s.hub.CloseOwner("ada")
	a.expectClose()
	if a.exit == nil {
		t.Errorf("ada's socket got no exit message; events %v", a.events)
	}
	word, cmd := marker("bob")
	b.typeLine(cmd)
	b.expect(word)
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	c := s.dial(t, Key{"ada", 1}, nil)
	c.expectStatus(StateReady)
	sess, _ := s.hub.Session(Key{"ada", 1})
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.hub.Shutdown(ctx) }()
	if code := c.expectClose(); code != websocket.CloseGoingAway {
		t.Errorf("close code %d, want %d", code, websocket.CloseGoingAway)
	}
	_ = c.conn.Close()
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	select {
	case <-sess.Done():
	default:
		t.Error("Shutdown returned before the session ended")
	}
	if sessions, sockets := s.hub.Stats(); sessions != 0 || sockets != 0 {
		t.Errorf("Stats() after Shutdown = %d, %d", sessions, sockets)
	}
	_, resp, err := websocket.DefaultDialer.Dial(s.url(Key{"ada", 1}), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Shutdown: %v, %v; want 503", resp, err)
	}
}

func TestSessionWriteAndSubscribe(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	key := Key{"ada", 1}
	c := s.dial(t, key, nil)
	c.expectStatus(StateReady)
	sess, ok := s.hub.Session(key)
	if !ok {
		t.Fatal("no session")
	}
	out, cancel := sess.Subscribe(64)
	defer cancel()
	word, cmd := marker("typed")
	if _, err := sess.Write([]byte(cmd + "\r")); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	deadline := time.After(waitLong)
	for !strings.Contains(got.String(), word) {
		select {
		case chunk, ok := <-out:
			if !ok {
				t.Fatalf("subscription closed; got %q", got.String())
			}
			got.Write(chunk)
		case <-deadline:
			t.Fatalf("no %q in the subscription; got %q", word, got.String())
		}
	}
	// The socket saw it too, and the scrollback has it.
	c.expect(word)
	if !bytes.Contains(sess.Scrollback(), []byte(word)) {
		t.Error("scrollback lacks the typed command's output")
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	key := Key{"ada", 1}
	c := s.dial(t, key, nil)
	c.expectStatus(StateReady)
	sess, _ := s.hub.Session(key)
	slow, cancel := sess.subscribe(1, 50*time.Millisecond) // never read
	defer cancel()
	word, cmd := marker("done")
	c.typeLine("head -c 3000000 /dev/zero | tr '\\0' x; " + cmd)
	// The socket that keeps up gets everything.
	c.expect(word)
	if n := bytes.Count(c.out.Bytes(), []byte("x")); n < 3000000 {
		t.Errorf("socket got %d x's, want 3000000", n)
	}
	// The subscriber that did not was dropped: one chunk, then closed.
	<-slow
	select {
	case _, ok := <-slow:
		if ok {
			t.Error("slow subscriber got more than its buffer")
		}
	case <-time.After(waitLong):
		t.Error("slow subscriber's channel not closed")
	}
}

func TestRing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		size   int
		writes []string
		want   string
	}{
		{"empty", 8, nil, ""},
		{"fits", 8, []string{"ab", "cd"}, "abcd"},
		{"exactly full", 4, []string{"ab", "cd"}, "abcd"},
		{"wraps, cut at the first line break", 8, []string{"abc\ndef", "gh\nij"}, "ij"},
		{"wraps without line break", 6, []string{"abcd", "efgh"}, "cdefgh"},
		{"one write larger than the ring", 4, []string{"x", "0123456789"}, "6789"},
		{"wraps, line break kept", 10, []string{"123456", "78\nabcd"}, "abcd"},
	}
	for _, tt := range tests {
		r := newRing(tt.size)
		for _, w := range tt.writes {
			r.Write([]byte(w))
		}
		if got := string(r.Bytes()); got != tt.want {
			t.Errorf("%s: Bytes() = %q, want %q", tt.name, got, tt.want)
		}
	}
}
