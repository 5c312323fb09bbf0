package terminal

import (
	"context"
	"net/http"
	"slices"

	"github.com/gorilla/websocket"
)

// Status messages of a watcher's socket.
const (
	msgWatchWaiting = "This learner has no terminal open; waiting for one."
	msgWatching     = "Watching this terminal, read-only."
)

// ServeWatch upgrades the request and shows key's terminal to a watcher
// (an instructor) until the socket closes: the scrollback, then live output,
// after a "ready" status. It never opens a session: while key has none, the
// watcher gets a "waiting" status and waits for one. Everything the watcher
// sends is dropped and counted (DroppedWatchInput); it never reaches the PTY,
// and it resizes nothing. A watcher that falls behind the output is closed
// with 1013 at once rather than slow the PTY; when the PTY ends it gets the
// exit message. A watcher does not keep the session alive: the grace period
// runs as if it were not there.
//
// The origin is checked as by ServeWS; the caller checks that the request
// may watch key.
func (h *Hub) ServeWatch(w http.ResponseWriter, r *http.Request, key Key) {
	c := h.upgrade(w, r, h.log.With("user_id", key.Owner, "tab", key.Tab, "watcher", true))
	if c == nil {
		return
	}
	defer h.removeClient(c)
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	go c.writeLoop()
	var sess *Session
	var sub *subscriber
	attached := make(chan struct{})
	go func() {
		defer close(attached)
		sess, sub = h.watch(ctx, c, key)
	}()
	var dropped int64
	func() {
		defer close(c.readDone)
		defer cancel()
		c.readMessages(func(_ int, data []byte) {
			dropped += int64(len(data))
			h.watchDropped.Add(int64(len(data)))
		})
	}()
	<-attached
	if sess != nil {
		sess.unwatch(sub)
	}
	<-c.writeDone
	if dropped > 0 {
		c.log.Info("dropped what a watcher sent", "bytes", dropped)
	}
}

// watch attaches c to key's session as a watcher, waiting for the session
// to appear. It returns the session and c's subscription, or nils if ctx
// ended or the hub shut down first.
func (h *Hub) watch(ctx context.Context, c *client, key Key) (*Session, *subscriber) {
	told := false
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			c.close(websocket.CloseGoingAway, msgShutdown)
			return nil, nil
		}
		s := h.sessions[key]
		var added chan struct{}
		if s == nil {
			if h.added == nil {
				h.added = make(chan struct{})
			}
			added = h.added
		}
		h.mu.Unlock()
		if s != nil {
			if sub := s.watch(c); sub != nil {
				c.log.Info("watching terminal")
				return s, sub
			}
			// It ended meanwhile, and is already gone from the map.
			continue
		}
		if !told {
			c.status(StateWaiting, msgWatchWaiting, 0)
			told = true
		}
		select {
		case <-added:
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// watch adds c as a read-only subscriber: it gets the scrollback, a "ready"
// status, then live output. It returns nil if the session has ended.
func (s *Session) watch(c *client) *subscriber {
	sub := newSubscriber(socketQueue, 0)
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return nil
	}
	replay := s.ring.Bytes()
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	c.send(command{kind: cmdAttach, sub: sub, data: replay, text: encodeStatus(StateReady, msgWatching, 100)})
	return sub
}

// unwatch removes a watcher's subscription.
func (s *Session) unwatch(sub *subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(sub, endGone)
}

// Watchers counts the session's subscribers other than its socket: watchers
// and Subscribe callers.
func (s *Session) Watchers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.subs)
	if s.ownerSub != nil && slices.Contains(s.subs, s.ownerSub) {
		n--
	}
	return n
}

// Tabs returns the tabs of owner's live sessions, in order.
func (h *Hub) Tabs(owner string) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var tabs []int
	for k := range h.sessions {
		if k.Owner == owner {
			tabs = append(tabs, k.Tab)
		}
	}
	slices.Sort(tabs)
	return tabs
}

// DroppedWatchInput counts the bytes watchers sent, all dropped.
func (h *Hub) DroppedWatchInput() int64 { return h.watchDropped.Load() }
