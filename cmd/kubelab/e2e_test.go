//go:build e2e

package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kubelab/sandbox"
	"kubelab/sandbox/kind"
)

// TestServeKindWarmPoolAndKill9 runs the real `kubelab serve` on the kind
// provider with a warm pool of one: the first learner of a Kubernetes
// lesson gets the pooled sandbox (no cluster is created for them), works in
// it, the server is killed with SIGKILL and started again on the same data,
// and the learner reconnects to the same sandbox, work intact, while
// nothing is left orphaned.
func TestServeKindWarmPoolAndKill9(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		t.Fatalf("the e2e tests need a Docker engine (run .ci/docker-up): docker info: %v\n%s", err, out)
	}
	provider := kind.New(kind.Options{})
	before := sandboxIDs(ctx, t, provider)
	t.Cleanup(func() {
		// remove what this test made, and only that
		for _, id := range sandboxIDs(context.Background(), t, provider) {
			if !slices.Contains(before, id) {
				if err := provider.Delete(context.Background(), id); err != nil {
					t.Errorf("delete sandbox %s: %v", id, err)
				}
			}
		}
	})

	data := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	lessonsDir, err := filepath.Abs("../../server/testdata/e2e")
	must(t, err)
	args := []string{"serve", "--addr", addr, "--data", data, "--sandbox", "kind", "--warm-pool", "1", "--lessons", lessonsDir}

	srv, logs := startServerLogs(t, args)
	start := time.Now()
	waitLog(t, logs, "warm sandbox ready", 10*time.Minute)
	t.Logf("FIGURE warm sandbox (with a cluster) ready %.1f s after the server started", time.Since(start).Seconds())
	pooled := newIDs(ctx, t, provider, before)
	if len(pooled) != 1 {
		t.Fatalf("after the warm pool filled: new sandboxes %v, want one", pooled)
	}

	cookie := sessionCookie(t, base)
	start = time.Now()
	ws := dialReady(t, base, cookie, "cluster/deploy", 2*time.Minute)
	t.Logf("FIGURE warm hand-out: terminal ready %.2f s after the websocket was opened", time.Since(start).Seconds())
	if !strings.Contains(logs.String(), "handed out a warm sandbox") {
		t.Errorf("the learner did not get the warm sandbox; server log:\n%s", logs.String())
	}
	must(t, ws.WriteMessage(websocket.BinaryMessage, []byte(
		"touch ~/kill9-marker; kubectl config view -o jsonpath='{.clusters[0].cluster.server}{\"\\n\"}'; kubectl get nodes --no-headers | awk '{print \"nodestate:\" $2}'\n")))
	out := readUntilMatch(t, ws, regexp.MustCompile(`nodestate:(Ready|NotReady)`))
	if !strings.Contains(out, "https://"+pooled[0]+"-control-plane:6443") || !strings.Contains(out, "nodestate:Ready") {
		t.Fatalf("the learner's terminal is not on the pooled sandbox %s with a Ready node:\n%s", pooled[0], out)
	}
	ws.Close()

	must(t, srv.Process.Signal(syscall.SIGKILL))
	_ = srv.Wait()
	_, logs = startServerLogs(t, args)
	waitLog(t, logs, "adopted sandbox", time.Minute)

	start = time.Now()
	ws = dialReady(t, base, cookie, "cluster/deploy", 2*time.Minute)
	t.Logf("FIGURE reconnect after kill -9 and restart: terminal ready %.2f s after the websocket was opened", time.Since(start).Seconds())
	must(t, ws.WriteMessage(websocket.BinaryMessage, []byte("ls ~/kill9-marker && echo marker-$((6*7))\n")))
	readUntil(t, ws, "marker-42")
	ws.Close()

	// The restarted server refills its pool with a new sandbox; nothing
	// else is left: the handed-out one was adopted, not duplicated, and
	// what the killed server was still making when it died (its docker
	// commands outlive it) is swept as an orphan within a minute or two.
	waitLog(t, logs, "warm sandbox ready", 10*time.Minute)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		now := newIDs(ctx, t, provider, before)
		if len(now) == 2 && slices.Contains(now, pooled[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandboxes 3 minutes after the restart: %v; want %s (the learner's) and one new warm one", now, pooled[0])
		}
		time.Sleep(5 * time.Second)
	}
}

func sandboxIDs(ctx context.Context, t *testing.T, p sandbox.Provider) []string {
	t.Helper()
	list, err := p.List(ctx)
	if err != nil {
		t.Fatalf("list sandboxes: %v", err)
	}
	var ids []string
	for _, sb := range list {
		ids = append(ids, sb.ID())
	}
	return ids
}

func newIDs(ctx context.Context, t *testing.T, p sandbox.Provider, before []string) []string {
	var ids []string
	for _, id := range sandboxIDs(ctx, t, p) {
		if !slices.Contains(before, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// waitLog waits until the server's log has line.
func waitLog(t *testing.T, logs *syncBuffer, line string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(logs.String(), line) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the server log after %s:\n%s", line, d, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dialReady opens the terminal of lesson and waits up to d for its sandbox.
func dialReady(t *testing.T, base, cookie, lesson string, d time.Duration) *websocket.Conn {
	t.Helper()
	h := map[string][]string{"Origin": {base}, "Cookie": {"kubelab_session=" + cookie}}
	u := strings.Replace(base, "http://", "ws://", 1) + "/ws/terminal?tab=0&lesson=" + lesson
	ws, _, err := websocket.DefaultDialer.Dial(u, h)
	must(t, err)
	t.Cleanup(func() { ws.Close() })
	must(t, ws.SetReadDeadline(time.Now().Add(d)))
	for {
		typ, data, err := ws.ReadMessage()
		must(t, err)
		if typ == websocket.TextMessage && strings.Contains(string(data), `"state":"ready"`) {
			return ws
		}
		if typ == websocket.TextMessage && strings.Contains(string(data), `"state":"error"`) {
			t.Fatalf("sandbox failed: %s", data)
		}
	}
}

// readUntilMatch reads terminal output until re matches it.
func readUntilMatch(t *testing.T, ws *websocket.Conn, re *regexp.Regexp) string {
	t.Helper()
	var out strings.Builder
	for !re.MatchString(out.String()) {
		must(t, ws.SetReadDeadline(time.Now().Add(30*time.Second)))
		typ, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("reading terminal (got %q): %v", out.String(), err)
		}
		if typ == websocket.BinaryMessage {
			out.Write(data)
		}
	}
	return out.String()
}
