package terminal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"kubelab/sandbox"
)

const (
	readChunk    = 32 << 10 // most bytes read from the PTY at once
	minReadChunk = 1 << 10  // the first read buffer of a session
	// socketQueue is how many chunks of output may wait for a socket.
	socketQueue = 32
	// patience is how long the PTY reader waits for a subscriber whose
	// queue is full before dropping it. Meanwhile the PTY is not read, so a
	// shell printing faster than the browser takes it is slowed down, as a
	// real terminal slows it down.
	patience = 5 * time.Second
	// exitWait bounds the wait for the shell's exit status after the PTY
	// reported end of file.
	exitWait = 5 * time.Second
)

// endReason says why a subscriber stopped getting output.
type endReason int

const (
	endExit      endReason = iota // the PTY ended
	endGone                       // the subscriber left (socket dropped, cancel)
	endTakenOver                  // another socket took the terminal over
	endLagging                    // its queue stayed full for too long
	endShutdown                   // the hub shuts down
)

// subscriber receives a copy of the output. Only the session's output pump
// sends on ch or closes it (when the PTY ended or the subscriber was
// dropped for lagging); a removal by anyone else closes gone instead.
type subscriber struct {
	ch       chan []byte
	gone     chan struct{}
	patience time.Duration // how long a full queue may hold the pump
	// Set, under the session's lock, before ch or gone is closed.
	reason  endReason
	code    int
	removed bool
}

func newSubscriber(n int, patience time.Duration) *subscriber {
	return &subscriber{ch: make(chan []byte, max(n, 1)), gone: make(chan struct{}), patience: patience}
}

// Session is one live terminal: a PTY, its scrollback and the sockets or
// other subscribers that get its output. Its methods are safe for
// concurrent use.
type Session struct {
	hub  *Hub
	key  Key
	term sandbox.Terminal
	log  *slog.Logger
	done chan struct{} // closed when the PTY ended and the session is gone

	wmu sync.Mutex // one writer into the PTY at a time

	mu       sync.Mutex
	ring     *ring
	subs     []*subscriber
	owner    *client // the socket that types and resizes
	ownerSub *subscriber
	grace    *time.Timer
	graceGen int
	closing  bool      // the hub asked the PTY to close
	reason   endReason // why, when closing
	ended    bool
}

func newSession(h *Hub, key Key, term sandbox.Terminal) *Session {
	s := &Session{
		hub:  h,
		key:  key,
		term: term,
		log:  h.log.With("user_id", key.Owner, "tab", key.Tab),
		done: make(chan struct{}),
		ring: newRing(h.opts.Scrollback),
	}
	// Until a socket attaches, the grace period runs.
	s.mu.Lock()
	s.startGraceLocked()
	s.mu.Unlock()
	return s
}

// Key returns the session's key.
func (s *Session) Key() Key { return s.key }

// Done is closed when the session has ended: its PTY is gone and the hub
// forgot it.
func (s *Session) Done() <-chan struct{} { return s.done }

// Write types p into the PTY, as a browser does (used by `kubelab test`).
func (s *Session) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	n, err := s.term.Write(p)
	if err != nil {
		return n, fmt.Errorf("write to terminal %s: %w", s.key, err)
	}
	return n, nil
}

// Subscribe returns a live copy of the output from now on, with room for
// buf chunks, and the function that stops it. The channel is closed when
// the session ends, or when the subscriber did not keep up (its buffer
// stayed full for seconds). After cancel, the channel gets no more output
// but is not closed.
func (s *Session) Subscribe(buf int) (ch <-chan []byte, cancel func()) {
	return s.subscribe(buf, s.hub.patience)
}

func (s *Session) subscribe(buf int, patience time.Duration) (ch <-chan []byte, cancel func()) {
	sub := newSubscriber(buf, patience)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		close(sub.ch)
		return sub.ch, func() {}
	}
	s.subs = append(s.subs, sub)
	return sub.ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.removeLocked(sub, endGone)
	}
}

// Scrollback returns a copy of the output kept for replay.
func (s *Session) Scrollback() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ring.Bytes()
}

// run is the output pump: it reads the PTY until it ends, keeps the
// scrollback and fans the output out, then ends the session.
func (s *Session) run() {
	defer s.hub.wg.Done()
	defer close(s.done)
	// The read buffer starts small and doubles while reads fill it, so a
	// quiet terminal holds little memory and a busy one reads in big
	// chunks.
	buf := make([]byte, minReadChunk)
	var targets []*subscriber
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	for {
		n, err := s.term.Read(buf)
		if n > 0 {
			targets = s.publish(buf[:n], targets[:0], wait)
			if n == len(buf) && len(buf) < readChunk {
				buf = make([]byte, 2*len(buf))
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Warn("read terminal", "err", err)
			}
			break
		}
	}
	code := -1
	if w, ok := s.term.(sandbox.ExitWaiter); ok {
		ctx, cancel := context.WithTimeout(context.Background(), exitWait)
		if c, err := w.Wait(ctx); err == nil {
			code = c
		}
		cancel()
	}
	s.hub.removeSession(s)

	s.mu.Lock()
	s.ended = true
	s.stopGraceLocked()
	reason := endExit
	if s.closing && s.reason == endShutdown {
		reason = endShutdown
	}
	for _, sub := range s.subs {
		sub.reason, sub.code, sub.removed = reason, code, true
		close(sub.ch)
	}
	s.subs, s.owner, s.ownerSub = nil, nil, nil
	s.mu.Unlock()

	if err := s.term.Close(); err != nil {
		s.log.Warn("close terminal", "err", err)
	}
	s.log.Info("terminal ended", "code", code)
}

// publish appends p to the scrollback and hands one copy of it to every
// subscriber, waiting up to its patience for one whose queue is full.
func (s *Session) publish(p []byte, targets []*subscriber, wait *time.Timer) []*subscriber {
	s.mu.Lock()
	s.ring.Write(p)
	targets = append(targets, s.subs...)
	s.mu.Unlock()
	if len(targets) == 0 {
		return targets
	}
	chunk := slices.Clone(p)
	for _, sub := range targets {
		select {
		case sub.ch <- chunk:
			continue
		case <-sub.gone:
			continue
		default:
		}
		if sub.patience <= 0 { // a watcher: never hold the PTY up
			s.dropLagging(sub)
			continue
		}
		wait.Reset(sub.patience)
		select {
		case sub.ch <- chunk:
		case <-sub.gone:
		case <-wait.C:
			s.dropLagging(sub)
		}
		wait.Stop()
	}
	return targets
}

// dropLagging removes sub, whose queue stayed full, and closes its channel.
func (s *Session) dropLagging(sub *subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !sub.removed {
		s.log.Warn("terminal output subscriber fell behind; dropped")
		s.removeLocked(sub, endLagging)
		close(sub.ch)
	}
}

// attach makes c the session's socket: it gets the scrollback if
// reconnecting, then live output. The previous socket, if any, is taken
// over. It reports false if the session has ended.
func (s *Session) attach(c *client, reconnect bool) bool {
	sub := newSubscriber(socketQueue, s.hub.patience)
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return false
	}
	s.stopGraceLocked()
	var replay []byte
	if reconnect {
		replay = s.ring.Bytes()
	}
	s.subs = append(s.subs, sub)
	old := s.ownerSub
	s.owner, s.ownerSub = c, sub
	if old != nil {
		s.removeLocked(old, endTakenOver)
	}
	s.mu.Unlock()

	if !c.bind(s) {
		// The socket closed meanwhile.
		s.detach(c)
		return true
	}
	status := encodeStatus(StateReady, "Your terminal is ready.", 100)
	if reconnect {
		status = encodeStatus(StateReconnected, "Reconnected to your terminal.", 100)
		s.log.Info("terminal reconnected", "replay_bytes", len(replay))
	}
	c.send(command{kind: cmdAttach, sub: sub, data: replay, text: status})
	return true
}

// detach removes c if it is the session's socket; the grace period starts.
func (s *Session) detach(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner == c {
		s.removeLocked(s.ownerSub, endGone)
	}
}

// input types p from socket c, if c is the session's socket.
func (s *Session) input(c *client, p []byte) {
	s.mu.Lock()
	ok := s.owner == c
	s.mu.Unlock()
	if !ok {
		return
	}
	if _, err := s.Write(p); err != nil {
		s.log.Debug("type into terminal", "err", err)
	}
}

// resize resizes the PTY for socket c, if c is the session's socket.
func (s *Session) resize(c *client, cols, rows uint16) {
	s.mu.Lock()
	ok := s.owner == c
	s.mu.Unlock()
	if !ok {
		return
	}
	if err := s.term.Resize(cols, rows); err != nil {
		s.log.Debug("resize terminal", "err", err)
	}
}

// close asks the PTY to end (once); the output pump then ends the session.
func (s *Session) close(reason endReason) {
	s.mu.Lock()
	if s.closing || s.ended {
		s.mu.Unlock()
		return
	}
	s.closing, s.reason = true, reason
	s.mu.Unlock()
	if err := s.term.Close(); err != nil {
		s.log.Warn("close terminal", "err", err)
	}
}

// removeLocked stops sub's output for reason. With s.mu held.
func (s *Session) removeLocked(sub *subscriber, reason endReason) {
	if sub == nil || sub.removed {
		return
	}
	if i := slices.Index(s.subs, sub); i >= 0 {
		s.subs = slices.Delete(s.subs, i, i+1)
	}
	sub.reason, sub.removed = reason, true
	if reason != endLagging {
		close(sub.gone)
	}
	if sub == s.ownerSub {
		s.owner, s.ownerSub = nil, nil
		s.startGraceLocked()
	}
}

// startGraceLocked starts the grace period unless a socket is attached.
func (s *Session) startGraceLocked() {
	if s.ended || s.owner != nil {
		return
	}
	s.stopGraceLocked()
	gen := s.graceGen
	s.grace = time.AfterFunc(s.hub.opts.Grace, func() { s.expire(gen) })
}

func (s *Session) stopGraceLocked() {
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
	s.graceGen++
}

// expire closes the PTY when grace period gen ran out with no socket.
func (s *Session) expire(gen int) {
	s.mu.Lock()
	stale := gen != s.graceGen || s.owner != nil || s.ended
	s.mu.Unlock()
	if stale {
		return
	}
	s.log.Info("no socket for the grace period; closing terminal", "grace", s.hub.opts.Grace)
	s.close(endExit)
}
