// Package terminal bridges browsers to sandbox terminals over websockets,
// and keeps each terminal's session alive across dropped sockets.
//
// The protocol, fixed for the browser and for tests:
//
//   - Binary frames carry raw terminal bytes, both ways.
//   - Text frames carry JSON control messages. From the browser:
//     {"type":"resize","cols":C,"rows":R}. From the server:
//     {"type":"status","state":S,"message":M,"percent":P} with S one of
//     "starting", "progress", "ready", "error", "reconnected", and for a
//     watcher "waiting" (the owner has no such terminal open yet); and
//     {"type":"exit","code":N} when the shell ended.
//   - The server closes the socket with 1000 after an exit message, 1001 when
//     it shuts down, 1009 when a message is over the size limit, 1013 when the
//     socket could not keep up with the output (reconnect to catch up from the
//     scrollback), CloseTakenOver (4001) when another socket took the
//     terminal over, and CloseOpenFailed (4002) after an "error" status.
//
// A watcher (ServeWatch) sees a session read-only: the scrollback, then live
// output. It never opens a session, what it sends is dropped, and it is
// dropped itself rather than slow the PTY down when it falls behind.
//
// A session outlives its socket: when the socket drops the PTY is kept for
// a grace period, and a socket that comes back for the same Key gets the
// scrollback replayed and then a "reconnected" status.
package terminal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"kubelab/sandbox"
)

// Options configure a Hub. Zero values take the defaults.
type Options struct {
	Grace          time.Duration // PTY kept after the last socket dropped; default 5m
	Scrollback     int           // ring buffer bytes replayed on reconnect; default 256 KiB
	AllowedOrigins []string      // origins (https://host:port) or hosts (host:port) allowed besides the request's own host
	MaxMessage     int64         // largest message read from a browser; default 64 KiB
	Logger         *slog.Logger  // nil discards
}

// Defaults of Options.
const (
	DefaultGrace      = 5 * time.Minute
	DefaultScrollback = 256 << 10
	DefaultMaxMessage = 64 << 10
)

// Close codes of the protocol beyond the standard ones.
const (
	CloseTakenOver  = 4001 // another socket attached to the same terminal
	CloseOpenFailed = 4002 // the terminal could not start; the "error" status says why
)

// Status states.
const (
	StateStarting    = "starting"
	StateProgress    = "progress"
	StateReady       = "ready"
	StateError       = "error"
	StateReconnected = "reconnected"
	StateWaiting     = "waiting"
)

const (
	writeWait  = 10 * time.Second // a write to a socket must finish within this
	pongWait   = 60 * time.Second // a socket silent for this long is dead
	pingPeriod = 20 * time.Second
	closeWait  = 2 * time.Second // for the browser's reply to our close frame
)

// Key names a terminal session: an owner's tab.
type Key struct {
	Owner string
	Tab   int
}

func (k Key) String() string { return fmt.Sprintf("%s/%d", k.Owner, k.Tab) }

// Opener creates the PTY for a new session. status reports progress (the
// creation of the sandbox) to the socket that asked; Opener returns the
// terminal, or an error whose message is shown to the learner.
type Opener func(ctx context.Context, status func(state, message string, percent int)) (sandbox.Terminal, error)

// Hub holds the live terminal sessions and the sockets attached to them.
type Hub struct {
	opts     Options
	log      *slog.Logger
	upgrader websocket.Upgrader
	patience time.Duration // see the patience constant

	ctx    context.Context // openers run under it; Shutdown cancels it
	cancel context.CancelFunc
	wg     sync.WaitGroup // sessions' output pumps and sockets

	mu       sync.Mutex
	closed   bool
	sessions map[Key]*Session
	opening  map[Key]chan struct{} // closed when the opening ends
	clients  map[*client]struct{}
	added    chan struct{} // made by a waiting watcher, closed when a session is added

	watchDropped atomic.Int64 // bytes watchers sent, dropped
}

// NewHub returns a Hub.
func NewHub(opts Options) *Hub {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Scrollback <= 0 {
		opts.Scrollback = DefaultScrollback
	}
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = DefaultMaxMessage
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		opts:     opts,
		log:      opts.Logger,
		patience: patience,
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[Key]*Session),
		opening:  make(map[Key]chan struct{}),
		clients:  make(map[*client]struct{}),
	}
	h.upgrader = websocket.Upgrader{
		// The browser sends keystrokes and small control messages: a
		// small read buffer of our own costs an idle terminal less than
		// keeping the HTTP server's 4 KiB one of the hijacked connection.
		ReadBufferSize:  512,
		WriteBufferSize: 32 << 10,
		// Write buffers are lent to a connection only while it writes, so
		// idle terminals do not each hold one.
		WriteBufferPool: &sync.Pool{},
		// ServeWS checks the origin before upgrading.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return h
}

// ServeWS upgrades the request and bridges it to the session for key until
// the socket closes. A live session is re-attached: its scrollback is
// replayed, then a "reconnected" status is sent. Otherwise open is called,
// its progress streamed as status messages; if it fails, an "error" status
// with its message is sent and the socket closed. When the PTY ends the
// socket gets an exit message and is closed, and the session is removed.
// When the socket drops the session is kept for the grace period, then
// closed. A second socket on the same key takes over: the first is closed
// with CloseTakenOver.
//
// A request whose Origin is neither the request's host nor allowed is
// refused with 403 before the upgrade; a request without Origin (not from a
// browser) is allowed.
//
// ServeWS returns once the socket is upgraded; done, if not nil, is called
// when the socket has closed (or at once when it was refused). The
// request's context ends when ServeWS returns: open gets the hub's.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request, key Key, open Opener, done func()) {
	c := h.upgrade(w, r, h.log.With("user_id", key.Owner, "tab", key.Tab))
	if c == nil {
		if done != nil {
			done()
		}
		return
	}
	ctx, cancel := context.WithCancel(h.ctx)
	// The socket is read in a goroutine of its own, and the HTTP handler's
	// returns: its stack, grown deep by the server and the middleware, is
	// freed for as long as the terminal stays open. Attaching (which may
	// wait for a sandbox) runs beside the reader and ends, so an idle
	// terminal costs the server as few goroutines as possible.
	go c.writeLoop()
	connected := make(chan struct{})
	go func() {
		defer close(connected)
		h.connect(ctx, c, key, open)
	}()
	go func() {
		c.readLoop(cancel)
		<-connected
		<-c.writeDone
		h.removeClient(c)
		cancel()
		if done != nil {
			done()
		}
	}()
}

const msgShutdown = "kubelab is shutting down"

// upgrade checks r's origin and upgrades it to a websocket client, counted
// among the hub's sockets (the caller must removeClient it). It returns nil
// when it refused or failed, having replied.
func (h *Hub) upgrade(w http.ResponseWriter, r *http.Request, log *slog.Logger) *client {
	if !h.originAllowed(r) {
		log.Warn("websocket origin refused", "origin", r.Header.Get("Origin"), "host", r.Host)
		http.Error(w, "websocket origin not allowed", http.StatusForbidden)
		return nil
	}
	if h.isClosed() {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return nil
	}
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Debug("websocket upgrade", "err", err)
		return nil // the upgrader has replied
	}
	c := newClient(h, conn, log)
	if !h.addClient(c) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, msgShutdown), time.Now().Add(writeWait))
		_ = conn.Close()
		return nil
	}
	return c
}

// connect attaches c to key's session, opening it if there is none.
func (h *Hub) connect(ctx context.Context, c *client, key Key, open Opener) {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			c.close(websocket.CloseGoingAway, msgShutdown)
			return
		}
		if s := h.sessions[key]; s != nil {
			h.mu.Unlock()
			if s.attach(c, true) {
				return
			}
			continue // it ended and is gone from the map: open a new one
		}
		if opening, ok := h.opening[key]; ok {
			h.mu.Unlock()
			c.status(StateStarting, "This terminal is starting in another window.", 0)
			select {
			case <-opening:
				continue
			case <-ctx.Done():
				return
			}
		}
		opened := make(chan struct{})
		h.opening[key] = opened
		h.mu.Unlock()

		c.status(StateStarting, "Starting your terminal.", 0)
		term, err := open(ctx, c.status)
		if err == nil && term == nil {
			err = errors.New("no terminal")
		}

		h.mu.Lock()
		delete(h.opening, key)
		close(opened)
		if h.closed {
			h.mu.Unlock()
			if term != nil {
				_ = term.Close()
			}
			c.close(websocket.CloseGoingAway, msgShutdown)
			return
		}
		if err != nil {
			h.mu.Unlock()
			if ctx.Err() != nil {
				return // the socket is gone
			}
			c.log.Error("open terminal", "err", err)
			c.status(StateError, err.Error(), 0)
			c.close(CloseOpenFailed, "terminal could not start")
			return
		}
		s := newSession(h, key, term)
		h.sessions[key] = s
		if h.added != nil { // wake the watchers waiting for a session
			close(h.added)
			h.added = nil
		}
		h.wg.Add(1)
		h.mu.Unlock()
		c.log.Info("terminal opened")
		go s.run()
		if !s.attach(c, false) {
			c.close(websocket.CloseNormalClosure, "terminal ended")
		}
		return
	}
}

// Session returns key's live session.
func (h *Hub) Session(key Key) (*Session, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.sessions[key]
	return s, ok
}

// CloseOwner closes every session of owner (their sandbox is gone): their
// sockets get an exit message. It does not wait for the PTYs to end.
func (h *Hub) CloseOwner(owner string) {
	h.mu.Lock()
	var ss []*Session
	for k, s := range h.sessions {
		if k.Owner == owner {
			ss = append(ss, s)
		}
	}
	h.mu.Unlock()
	for _, s := range ss {
		go s.close(endExit)
	}
}

// Shutdown closes every session and socket (sockets get a close frame,
// 1001) and cancels openings, then waits for all of them to end or for ctx.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.cancel()
	sessions := make([]*Session, 0, len(h.sessions))
	for _, s := range h.sessions {
		sessions = append(sessions, s)
	}
	clients := make([]*client, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	h.mu.Unlock()

	for _, s := range sessions {
		go s.close(endShutdown)
	}
	for _, c := range clients {
		go c.close(websocket.CloseGoingAway, msgShutdown)
	}
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shut down terminals: %w", ctx.Err())
	}
}

// Stats counts live sessions and open sockets.
func (h *Hub) Stats() (sessions, sockets int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions), len(h.clients)
}

func (h *Hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

func (h *Hub) addClient(c *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.clients[c] = struct{}{}
	h.wg.Add(1)
	return true
}

func (h *Hub) removeClient(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
	h.wg.Done()
}

// removeSession forgets s (its PTY ended).
func (h *Hub) removeSession(s *Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.key] == s {
		delete(h.sessions, s.key)
	}
}

// originAllowed reports whether r's Origin is its own host (whatever the
// scheme) or in the allow-list. Requests without Origin do not come from a
// browser page and are allowed.
func (h *Hub) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, allowed := range h.opts.AllowedOrigins {
		if strings.EqualFold(allowed, origin) || strings.EqualFold(allowed, u.Host) {
			return true
		}
	}
	return false
}

// statusMessage and exitMessage are the server's control messages.
type statusMessage struct {
	Type    string `json:"type"`
	State   string `json:"state"`
	Message string `json:"message"`
	Percent int    `json:"percent"`
}

type exitMessage struct {
	Type string `json:"type"`
	Code int    `json:"code"`
}

// controlMessage is a browser's control message.
type controlMessage struct {
	Type string `json:"type"`
	Cols int    `json:"cols"`
	Rows int    `json:"rows"`
}

func encodeStatus(state, message string, percent int) []byte {
	b, _ := json.Marshal(statusMessage{Type: "status", State: state, Message: message, Percent: min(max(percent, 0), 100)})
	return b
}

func encodeExit(code int) []byte {
	b, _ := json.Marshal(exitMessage{Type: "exit", Code: code})
	return b
}
