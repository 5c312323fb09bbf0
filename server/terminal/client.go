package terminal

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// maxFrame bounds how much queued output one binary frame coalesces.
	maxFrame = 256 << 10
	// maxPending bounds what a browser types before its terminal exists.
	maxPending = 64 << 10
	// maxDimension bounds the columns and rows of a resize.
	maxDimension = 1000
)

// commandKind is what a client's writer is asked to do.
type commandKind int

const (
	cmdText   commandKind = iota // write text as a text frame
	cmdAttach                    // write data (the replay) and text, then forward sub's output
	cmdClose                     // write a close frame with code and text, then end
)

type command struct {
	kind commandKind
	text []byte
	data []byte
	sub  *subscriber
	code int
}

// client is one websocket. A reader goroutine takes input and control
// messages; a writer goroutine owns every write but pings and close frames
// gorilla itself sends.
type client struct {
	hub  *Hub
	conn *websocket.Conn
	log  *slog.Logger

	cmds      chan command
	readDone  chan struct{} // closed when the read loop ended
	writeDone chan struct{} // closed when the write loop ended

	mu         sync.Mutex
	sess       *Session // nil until attached
	readerGone bool
	readErr    error  // why the read loop ended
	pending    []byte // typed before the terminal existed
	cols, rows uint16 // last resize before the terminal existed
}

func newClient(h *Hub, conn *websocket.Conn, log *slog.Logger) *client {
	return &client{
		hub:       h,
		conn:      conn,
		log:       log,
		cmds:      make(chan command, 8),
		readDone:  make(chan struct{}),
		writeDone: make(chan struct{}),
	}
}

// send queues cmd for the writer; false if the writer has ended.
func (c *client) send(cmd command) bool {
	select {
	case c.cmds <- cmd:
		return true
	case <-c.writeDone:
		return false
	}
}

// status sends a status message. Progress may be dropped rather than wait
// for a slow socket; the other states are always sent.
func (c *client) status(state, message string, percent int) {
	cmd := command{kind: cmdText, text: encodeStatus(state, message, percent)}
	if state != StateProgress {
		c.send(cmd)
		return
	}
	select {
	case c.cmds <- cmd:
	default:
	}
}

// close asks the writer to close the socket with code and text.
func (c *client) close(code int, text string) {
	c.send(command{kind: cmdClose, code: code, text: []byte(text)})
}

// bind records the session c is attached to and hands it what the browser
// sent before it existed. It reports false if the socket already closed.
func (c *client) bind(s *Session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readerGone {
		return false
	}
	c.sess = s
	if c.cols > 0 {
		s.resize(c, c.cols, c.rows)
	}
	if len(c.pending) > 0 {
		s.input(c, c.pending)
		c.pending = nil
	}
	return true
}

// readLoop reads the browser's messages until the socket fails or closes,
// then cancels the opening (if any) and detaches from the session.
func (c *client) readLoop(cancel func()) {
	defer close(c.readDone)
	defer cancel()
	c.readMessages(func(typ int, data []byte) {
		switch typ {
		case websocket.BinaryMessage:
			c.input(data)
		case websocket.TextMessage:
			c.control(data)
		}
	})
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		s.detach(c)
	}
}

// readMessages hands every message the browser sends to handle until the
// socket fails or closes.
func (c *client) readMessages(handle func(typ int, data []byte)) {
	c.conn.SetReadLimit(c.hub.opts.MaxMessage)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(pongWait)) })
	var err error
	for {
		var typ int
		var data []byte
		typ, data, err = c.conn.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.log.Warn("websocket message over the limit", "limit", c.hub.opts.MaxMessage)
			} else {
				c.log.Debug("websocket read", "err", err)
			}
			break
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
		handle(typ, data)
	}
	c.mu.Lock()
	c.readerGone = true
	c.readErr = err
	c.mu.Unlock()
}

func (c *client) input(p []byte) {
	c.mu.Lock()
	s := c.sess
	if s == nil {
		if len(c.pending)+len(p) <= maxPending {
			c.pending = append(c.pending, p...)
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	s.input(c, p)
}

func (c *client) control(p []byte) {
	var msg controlMessage
	// Decoded on a goroutine of its own: encoding/json's reflection would
	// double the read loop's stack, which every idle terminal keeps.
	decoded := make(chan error)
	go func() { decoded <- json.Unmarshal(p, &msg) }()
	if err := <-decoded; err != nil {
		c.log.Debug("bad control message", "err", err)
		return
	}
	switch msg.Type {
	case "resize":
		if msg.Cols < 1 || msg.Rows < 1 || msg.Cols > maxDimension || msg.Rows > maxDimension {
			c.log.Debug("bad resize", "cols", msg.Cols, "rows", msg.Rows)
			return
		}
		cols, rows := uint16(msg.Cols), uint16(msg.Rows)
		c.mu.Lock()
		s := c.sess
		if s == nil {
			c.cols, c.rows = cols, rows
		}
		c.mu.Unlock()
		if s != nil {
			s.resize(c, cols, rows)
		}
	default:
		c.log.Debug("unknown control message", "type", msg.Type)
	}
}

// writeLoop writes everything the socket sends and pings it, until the
// socket closes, then closes the connection.
func (c *client) writeLoop() {
	defer close(c.writeDone)
	defer c.finish()
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	var sub *subscriber
	var data <-chan []byte
	var gone <-chan struct{}
	for {
		select {
		case cmd := <-c.cmds:
			switch cmd.kind {
			case cmdText:
				if c.write(websocket.TextMessage, cmd.text) != nil {
					return
				}
			case cmdAttach:
				if len(cmd.data) > 0 && c.write(websocket.BinaryMessage, cmd.data) != nil {
					return
				}
				if c.write(websocket.TextMessage, cmd.text) != nil {
					return
				}
				sub, data, gone = cmd.sub, cmd.sub.ch, cmd.sub.gone
			case cmdClose:
				c.closeWith(cmd.code, string(cmd.text))
				return
			}
		case chunk, ok := <-data:
			if !ok {
				c.ended(sub)
				return
			}
			if !c.writeOutput(chunk, data) {
				// The frame was written; the output ended after it.
				c.ended(sub)
				return
			}
		case <-gone:
			c.ended(sub)
			return
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return
			}
		case <-c.readDone:
			return
		}
	}
}

// writeOutput writes chunk and whatever output is already queued behind it
// as one binary frame. It reports false if the output ended (data closed).
func (c *client) writeOutput(chunk []byte, data <-chan []byte) bool {
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	w, err := c.conn.NextWriter(websocket.BinaryMessage)
	if err != nil {
		c.log.Debug("websocket write", "err", err)
		return true
	}
	open := true
	n := len(chunk)
	_, err = w.Write(chunk)
	for err == nil && open && n < maxFrame {
		select {
		case more, ok := <-data:
			if !ok {
				open = false
				continue
			}
			n += len(more)
			_, err = w.Write(more)
		default:
			n = maxFrame // nothing queued: send what we have
		}
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		c.log.Debug("websocket write", "err", err)
		// The connection is broken; the reader will notice.
		_ = c.conn.Close()
	}
	return open
}

// ended tells the browser why output stopped, if it is still there.
func (c *client) ended(sub *subscriber) {
	switch sub.reason {
	case endExit:
		if c.write(websocket.TextMessage, encodeExit(sub.code)) == nil {
			c.closeWith(websocket.CloseNormalClosure, "terminal ended")
		}
	case endTakenOver:
		c.closeWith(CloseTakenOver, "This terminal was opened in another window.")
	case endLagging:
		c.closeWith(websocket.CloseTryAgainLater, "Output was too fast for this connection; reconnect to catch up.")
	case endShutdown:
		c.closeWith(websocket.CloseGoingAway, msgShutdown)
	case endGone:
	}
}

func (c *client) write(typ int, p []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.conn.WriteMessage(typ, p); err != nil {
		c.log.Debug("websocket write", "err", err)
		return err
	}
	return nil
}

// closeWith sends a close frame and waits a little for the browser's
// reply, which ends the read loop.
func (c *client) closeWith(code int, text string) {
	msg := websocket.FormatCloseMessage(code, text)
	if err := c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait)); err != nil {
		return
	}
	select {
	case <-c.readDone:
	case <-time.After(closeWait):
	}
}

// finish closes the connection. When the reader stopped on an error (such
// as an oversize message) rather than the browser's close frame, the
// browser may still be sending: the socket is half-closed and drained
// briefly first, so that the close frame we sent is not lost to a TCP reset.
func (c *client) finish() {
	nc := c.conn.NetConn()
	select {
	case <-c.readDone:
		c.mu.Lock()
		err := c.readErr
		c.mu.Unlock()
		var closeErr *websocket.CloseError
		if errors.As(err, &closeErr) {
			break
		}
		if hc, ok := nc.(interface{ CloseWrite() error }); ok {
			_ = hc.CloseWrite()
			_ = nc.SetReadDeadline(time.Now().Add(closeWait))
			_, _ = io.CopyN(io.Discard, nc, 4<<20)
		}
	default:
	}
	_ = c.conn.Close()
}
