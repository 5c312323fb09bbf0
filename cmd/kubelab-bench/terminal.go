package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/creack/pty"
	"github.com/gorilla/websocket"

	"kubelab/checker"
	"kubelab/lessons"
	"kubelab/sandbox"
	"kubelab/sandbox/images"
	"kubelab/sandbox/kind"
	"kubelab/sandbox/shell"
	"kubelab/server"
	"kubelab/server/store"
	"kubelab/server/terminal"
	"kubelab/web"
)

// inproc is a kubelab server in this process on the shell provider.
type inproc struct {
	url   string
	close func()
}

func startInproc(ctx context.Context) (*inproc, error) {
	return startInprocWith(ctx, nil, sandbox.ManagerOptions{})
}

// startInprocWith starts a kubelab server in this process on provider p
// (nil: the shell provider) with a Manager of opts.
func startInprocWith(ctx context.Context, p sandbox.Provider, opts sandbox.ManagerOptions) (*inproc, error) {
	dir, err := os.MkdirTemp("", "kubelab-bench-")
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, dir)
	if err != nil {
		return nil, err
	}
	lib, err := lessons.NewLibrary(ctx, []lessons.Source{lessons.BuiltInSource()}, lessons.Options{CompileCheck: checker.Compile}, false)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = shell.New(dir, log)
	}
	opts.Logger = log
	mgr := sandbox.NewManager(p, opts)
	hub := terminal.NewHub(terminal.Options{Logger: log})
	srv, err := server.New(server.Config{Web: web.Files(""), Logger: log}, lib, db, mgr, hub)
	if err != nil {
		return nil, err
	}
	ts := httptest.NewServer(srv.Handler())
	return &inproc{url: ts.URL, close: func() {
		ts.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(sctx)
		_ = mgr.Shutdown(sctx)
		_ = db.Close()
		_ = os.RemoveAll(dir)
	}}, nil
}

// inprocTerminal starts an in-process server on provider p (nil: the
// shell provider) and one learner's terminal on it.
func inprocTerminal(ctx context.Context, p sandbox.Provider, opts sandbox.ManagerOptions) (*inproc, *wsTerm, error) {
	srv, err := startInprocWith(ctx, p, opts)
	if err != nil {
		return nil, nil, err
	}
	t, err := dialTerm(ctx, srv.url)
	if err != nil {
		srv.close()
		return nil, nil, err
	}
	return srv, t, nil
}

// wsTerm is a bench client of /ws/terminal.
type wsTerm struct {
	conn *websocket.Conn
	tail []byte
	buf  []byte // typeAndCount's read buffer
}

// cookieFor gets a fresh learner cookie from base.
func cookieFor(base string) (string, error) {
	res, err := http.Get(base + "/")
	if err != nil {
		return "", err
	}
	res.Body.Close()
	for _, c := range res.Cookies() {
		if c.Name == server.SessionCookie {
			return c.Value, nil
		}
	}
	return "", errors.New("no session cookie")
}

// dialTerm connects a new learner's terminal and waits for the shell.
func dialTerm(ctx context.Context, base string) (*wsTerm, error) {
	cookie, err := cookieFor(base)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Origin", base)
	h.Set("Cookie", server.SessionCookie+"="+cookie)
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 32 << 10}
	conn, _, err := d.DialContext(ctx, strings.Replace(base, "http://", "ws://", 1)+"/ws/terminal?tab=0", h)
	if err != nil {
		return nil, err
	}
	t := &wsTerm{conn: conn}
	// A browser sizes its terminal as soon as the socket opens.
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"resize","cols":120,"rows":32}`)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("resize: %w", err)
	}
	for {
		_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		typ, data, err := conn.ReadMessage()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("wait for ready: %w", err)
		}
		if typ == websocket.TextMessage && bytes.Contains(data, []byte(`"state":"ready"`)) {
			break
		}
		if typ == websocket.TextMessage && bytes.Contains(data, []byte(`"state":"error"`)) {
			conn.Close()
			return nil, fmt.Errorf("sandbox failed: %s", data)
		}
	}
	if err := t.runUntil("echo ready-$((1+1))\n", "ready-2", 30*time.Second); err != nil {
		conn.Close()
		return nil, err
	}
	return t, nil
}

func (t *wsTerm) send(s string) error {
	return t.conn.WriteMessage(websocket.BinaryMessage, []byte(s))
}

// runUntil types text and reads output until marker appears, returning
// the bytes of output read.
func (t *wsTerm) runUntil(text, marker string, timeout time.Duration) error {
	_, err := t.typeAndCount(text, marker, timeout)
	return err
}

func (t *wsTerm) typeAndCount(text, marker string, timeout time.Duration) (int64, error) {
	if err := t.send(text); err != nil {
		return 0, err
	}
	var n int64
	m := []byte(marker)
	deadline := time.Now().Add(timeout)
	for {
		_ = t.conn.SetReadDeadline(deadline)
		typ, r, err := t.conn.NextReader()
		if err != nil {
			return n, fmt.Errorf("waiting for %q: %w", marker, err)
		}
		if typ != websocket.BinaryMessage {
			_, _ = io.Copy(io.Discard, r)
			continue
		}
		if t.buf == nil {
			t.buf = make([]byte, 32<<10)
		}
		buf := t.buf
		for {
			k, err := r.Read(buf)
			if k > 0 {
				n += int64(k)
				t.tail = append(t.tail, buf[:k]...)
				if bytes.Contains(t.tail, m) {
					t.tail = t.tail[:0]
					_, _ = io.Copy(io.Discard, r)
					return n, nil
				}
				if len(t.tail) > 256 {
					t.tail = append(t.tail[:0], t.tail[len(t.tail)-128:]...)
				}
			}
			if err != nil {
				break
			}
		}
	}
}

// throughputCommand writes n bytes of zeros as base64 (about 1.35 n bytes).
func throughputCommand(n int64) string {
	return fmt.Sprintf("head -c %d /dev/zero | base64", n)
}

func benchThroughput(ctx context.Context, c config, r *report) error {
	srv, t, err := inprocTerminal(ctx, nil, sandbox.ManagerOptions{})
	if err != nil {
		return err
	}
	defer srv.close()
	defer t.conn.Close()
	// Alternated runs, the median of each side: one run on a shared
	// machine can be off by half.
	var bare, ws []float64
	var n int64
	for range throughputRuns {
		// Baseline: the same command read straight from a PTY.
		cmd := exec.CommandContext(ctx, "bash", "-c", throughputCommand(c.throughput))
		f, err := pty.Start(cmd)
		if err != nil {
			return fmt.Errorf("bare pty: %w", err)
		}
		start := time.Now()
		bareBytes, _ := io.Copy(io.Discard, f)
		bare = append(bare, mbps(bareBytes, time.Since(start)))
		f.Close()
		_ = cmd.Wait()

		start = time.Now()
		n, err = t.typeAndCount(throughputCommand(c.throughput)+"; echo end-$((2+2))\n", "end-4", 10*time.Minute)
		if err != nil {
			return err
		}
		ws = append(ws, mbps(n, time.Since(start)))
	}
	a, b := median(ws), median(bare)
	r.add("terminal", fmt.Sprintf("throughput, %d MB through PTY → server → websocket → Go client, median of %d", n/1e6, throughputRuns),
		fmt.Sprintf("%.1f MB/s", a), fmt.Sprintf("%.1f MB/s (bare PTY)", b), ratio(a, b), "ratio ≥ 0.8")
	r.note("terminal throughput runs (MB/s), websocket %s, bare PTY %s", floats(ws), floats(bare))
	return nil
}

// throughputRuns is how many times each side of the throughput figure runs.
const throughputRuns = 3

// median of xs (not empty).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// floats formats xs with one decimal.
func floats(xs []float64) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(out, ", ")
}

// echoLatencies types keystrokes one at a time into `cat > /dev/null` (the
// tty echoes each one) and times each round trip.
func echoLatencies(n int, send func(byte) error, waitFor func(byte) error, newline func() error) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		ch := byte('a' + i%26)
		start := time.Now()
		if err := send(ch); err != nil {
			return nil, err
		}
		if err := waitFor(ch); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		if i%60 == 59 {
			if err := newline(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func benchEcho(ctx context.Context, c config, r *report) error {
	bare, err := ptyEcho(ctx, c.keystrokes, exec.CommandContext(ctx, echoCommand[0], echoCommand[1:]...))
	if err != nil {
		return fmt.Errorf("bare pty: %w", err)
	}
	srv, t, err := inprocTerminal(ctx, nil, sandbox.ManagerOptions{})
	if err != nil {
		return err
	}
	got, err := wsEcho(c.keystrokes, t)
	t.conn.Close()
	srv.close()
	if err != nil {
		return fmt.Errorf("websocket: %w", err)
	}
	addEcho(r, c.keystrokes, "shell provider", got, bare, "bare PTY", "p99 < 2 ms")

	if err := kindEcho(ctx, c, r); err != nil {
		r.notRun("echo (kind workstation)", err.Error())
	}
	return nil
}

// kindEcho times keystrokes through a kind sandbox's workstation, the
// terminal a learner really has: websocket → server → PTY → docker exec →
// the workstation's terminal, against `docker exec -it` into the same
// workstation on a bare PTY. It needs a Docker engine and the workstation
// image; the sandbox is deleted after.
func kindEcho(ctx context.Context, c config, r *report) error {
	if out, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", images.WorkstationImage).CombinedOutput(); err != nil {
		return fmt.Errorf("needs a Docker engine and the image %s (`kubelab images build`): %s", images.WorkstationImage, strings.TrimSpace(string(out)))
	}
	p := kind.New(kind.Options{})
	ids := &idRecorder{}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		for _, id := range ids.all() {
			_ = p.Delete(dctx, id)
		}
	}()
	srv, t, err := inprocTerminal(ctx, p, sandbox.ManagerOptions{IDPrefix: benchPrefix, Registry: ids})
	if err != nil {
		return fmt.Errorf("kind workstation terminal: %w", err)
	}
	got, err := wsEcho(c.keystrokes, t)
	t.conn.Close()
	srv.close()
	if err != nil {
		return fmt.Errorf("kind workstation websocket: %w", err)
	}
	sbs := ids.all()
	if len(sbs) == 0 {
		return errors.New("the server made no sandbox")
	}
	out, err := exec.CommandContext(ctx, "docker", "ps", "--quiet", "--filter", "label=kubelab.io/sandbox="+sbs[0], "--filter", "label=kubelab.io/role=workstation").Output()
	ws := strings.TrimSpace(string(out))
	if err != nil || ws == "" {
		return fmt.Errorf("find the workstation of sandbox %s: %v", sbs[0], err)
	}
	bare, err := ptyEcho(ctx, c.keystrokes, exec.CommandContext(ctx, "docker", append([]string{"exec", "-it", "-u", "learner", ws}, echoCommand...)...))
	if err != nil {
		return fmt.Errorf("bare docker exec: %w", err)
	}
	addEcho(r, c.keystrokes, "kind workstation", got, bare, "bare `docker exec -it` PTY", "")
	return nil
}

// addEcho adds the p50 and p99 rows of an echo measurement.
func addEcho(r *report, n int, where string, got, bare []time.Duration, baseline, target99 string) {
	for _, p := range []float64{50, 99} {
		a, b := percentile(got, p), percentile(bare, p)
		target := ""
		if p == 99 {
			target = target99
		}
		r.add("terminal", fmt.Sprintf("echo latency p%.0f over %d keystrokes (%s)", p, n, where),
			ms(a), ms(b)+" ("+baseline+")", ratio(float64(a), float64(b)), target)
	}
}

// readyMarker is what echoCommand prints once it reads its terminal.
const readyMarker = "kubelab-bench-ready"

// echoCommand prints readyMarker, then reads its terminal and echoes
// nothing itself: the terminal echoes what is typed.
var echoCommand = []string{"bash", "-c", "echo " + readyMarker + "; exec cat > /dev/null"}

// ptyEcho starts cmd (which runs echoCommand) on a bare PTY and times n
// keystrokes echoed by the terminal.
func ptyEcho(ctx context.Context, n int, cmd *exec.Cmd) ([]time.Duration, error) {
	f, err := pty.Start(cmd)
	if err != nil {
		return nil, err
	}
	defer func() { f.Close(); _ = cmd.Wait() }()
	buf := make([]byte, 4096)
	readFor := func(ch byte) error {
		for {
			k, err := f.Read(buf)
			if err != nil {
				return err
			}
			if bytes.IndexByte(buf[:k], ch) >= 0 {
				return nil
			}
		}
	}
	// The command prints readyMarker when it runs: by then the docker CLI
	// has put the host PTY in raw mode, and echoes come from the
	// container's terminal, not from the host's.
	var seen []byte
	for !bytes.Contains(seen, []byte(readyMarker)) {
		k, err := f.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("wait for %q: %w (output: %q)", readyMarker, err, seen)
		}
		seen = append(seen, buf[:k]...)
	}
	return echoLatencies(n,
		func(b byte) error { _, err := f.Write([]byte{b}); return err },
		readFor,
		func() error {
			if _, err := f.Write([]byte("\n")); err != nil {
				return err
			}
			return readFor('\n')
		})
}

// wsEcho runs cat > /dev/null in terminal t and times n keystrokes echoed
// back through the websocket.
func wsEcho(n int, t *wsTerm) ([]time.Duration, error) {
	if err := t.runUntil("stty -echoctl; cat > /dev/null\n", "/dev/null\r\n", 30*time.Second); err != nil {
		return nil, err
	}
	wsWait := func(ch byte) error {
		for {
			_ = t.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			typ, data, err := t.conn.ReadMessage()
			if err != nil {
				return err
			}
			if typ == websocket.BinaryMessage && bytes.IndexByte(data, ch) >= 0 {
				return nil
			}
		}
	}
	return echoLatencies(n,
		func(b byte) error { return t.send(string(b)) },
		wsWait,
		func() error {
			if err := t.send("\n"); err != nil {
				return err
			}
			return wsWait('\n')
		})
}
