//go:build e2e

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kubelab/sandbox"
	"kubelab/sandbox/kind"
	"kubelab/server/store"
)

// chaosLesson is a Docker lesson: its sandbox (network, engine,
// workstation) takes seconds, so five rounds fit in a few minutes.
const chaosLesson = `---
title: Chaos
minutes: 1
sandbox: docker
---

## Run something

` + "```check\nid: ok\ntitle: true\ncommand:\n  run: \"true\"\n```\n"

// TestServeKill9DuringCreations: five times, five learners open a Docker
// lesson at once (five creations) while the previous five, who left, are
// culled (deletions); the server is killed with SIGKILL in the middle and
// started again on the same data. Within 60 s every Docker object with
// this server's sandbox labels belongs to a sandbox its store records, and
// every recorded sandbox works.
func TestServeKill9DuringCreations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	provider := kind.New(kind.Options{})
	if _, err := provider.List(ctx); err != nil {
		t.Fatalf("the e2e tests need a Docker engine (run .ci/docker-up): %v", err)
	}
	data := t.TempDir()
	lessons := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(lessons, "chaos"), 0o755))
	must(t, os.WriteFile(filepath.Join(lessons, "chaos", "track.yaml"), []byte("title: Chaos\norder: 1\ndescription: kill -9 test\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(lessons, "chaos", "01-run.md"), []byte(chaosLesson), 0o644))
	addr := freeAddr(t)
	base := "http://" + addr
	args := []string{"serve", "--addr", addr, "--data", data, "--sandbox", "kind", "--warm-pool", "0",
		"--max-creating", "5", "--idle-timeout", "10s", "--terminal-grace", "1s", "--lessons", lessons}

	srv, logs := startServerLogs(t, args)
	prefix := readPrefix(t, data)
	t.Cleanup(func() {
		for _, id := range labelledIDs(context.Background(), t, provider, prefix) {
			_ = provider.Delete(context.Background(), id)
		}
	})

	var worst time.Duration
	checked := 0 // adopted sandboxes verified to work, over all rounds
	for round := 1; round <= 5; round++ {
		// Five learners work in their sandboxes, then leave: culled 10 s later.
		var leaving []*websocket.Conn
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ws, err := openTerminal(base, sessionCookie(t, base), "chaos/run", true)
				if err != nil {
					t.Errorf("round %d: learner %d: %v", round, i, err)
					return
				}
				mu.Lock()
				leaving = append(leaving, ws)
				mu.Unlock()
			}()
		}
		wg.Wait()
		for _, ws := range leaving {
			ws.Close()
		}
		time.Sleep(9 * time.Second)
		// Five new learners arrive as the culling starts; the server dies
		// in the middle of both.
		var arriving []*websocket.Conn
		for i := range 5 {
			go func() {
				ws, err := openTerminal(base, sessionCookie(t, base), "chaos/run", false)
				if err != nil {
					t.Logf("round %d: new learner %d: %v", round, i, err)
					return
				}
				mu.Lock()
				arriving = append(arriving, ws)
				mu.Unlock()
			}()
		}
		wait := time.Duration(1000+rand.IntN(3000)) * time.Millisecond
		time.Sleep(wait)
		live := labelledIDs(ctx, t, provider, prefix)
		must(t, srv.Process.Signal(syscall.SIGKILL))
		_ = srv.Wait()
		t.Logf("round %d: SIGKILL %v after 5 new learners arrived and 5 left: %d sandboxes exist (ready, half made or half deleted)", round, wait, len(live))
		mu.Lock()
		for _, ws := range arriving {
			ws.Close()
		}
		mu.Unlock()

		start := time.Now()
		srv, logs = startServerLogs(t, args)
		var orphans, missing, ready []string
		for {
			orphans, missing, ready = reconcileState(ctx, t, provider, data, prefix)
			if len(orphans) == 0 && len(missing) == 0 {
				break
			}
			if time.Since(start) > 60*time.Second {
				t.Fatalf("round %d: 60 s after the restart: orphans (labelled, not in the store) %v; recorded but missing %v\nserver log:\n%s", round, orphans, missing, logs.String())
			}
			time.Sleep(time.Second)
		}
		took := time.Since(start)
		worst = max(worst, took)
		owned := labelledIDs(ctx, t, provider, prefix)
		for _, sb := range listOwned(ctx, t, provider, ready) {
			checked++
			res, err := sb.Exec(ctx, "echo works-$((6*7)); docker version --format '{{.Server.Version}}' >/dev/null && echo engine-ok")
			if err != nil || !strings.Contains(string(res.Stdout), "works-42") || !strings.Contains(string(res.Stdout), "engine-ok") {
				t.Errorf("round %d: owned sandbox %s does not work: %v %s%s", round, sb.ID(), err, res.Stdout, res.Stderr)
			}
		}
		// What the killed server's commands were still making may appear
		// later: it must be gone too by 60 s after the restart.
		time.Sleep(time.Until(start.Add(45 * time.Second)))
		for {
			orphans, missing, _ = reconcileState(ctx, t, provider, data, prefix)
			if len(orphans) == 0 && len(missing) == 0 {
				break
			}
			if time.Since(start) > 60*time.Second {
				t.Fatalf("round %d: 60 s after the restart: late orphans %v; recorded but missing %v\nserver log:\n%s", round, orphans, missing, logs.String())
			}
			time.Sleep(time.Second)
		}
		t.Logf("round %d: 0 orphans %.1f s after the restart (%d sandboxes owned then, %d ready, all working), still 0 at 45 s", round, took.Seconds(), len(owned), len(ready))
	}
	if checked == 0 {
		t.Error("no sandbox survived any restart: the test proved nothing about adopted sandboxes working")
	}
	t.Logf("FIGURE kill -9 during 5 creations and deletions, 5 rounds: 0 orphans each time, worst %.1f s after the restart; %d adopted sandboxes checked, all working", worst.Seconds(), checked)
}

// openTerminal opens a learner's terminal, and with ready waits (up to
// two minutes) until its sandbox is ready; the rest of what the server
// sends is drained, so it never blocks on this learner.
func openTerminal(base, cookie, lesson string, ready bool) (*websocket.Conn, error) {
	h := map[string][]string{"Origin": {base}, "Cookie": {"kubelab_session=" + cookie}}
	u := strings.Replace(base, "http://", "ws://", 1) + "/ws/terminal?tab=0&lesson=" + lesson
	ws, _, err := websocket.DefaultDialer.Dial(u, h)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	if ready {
		ws.SetReadDeadline(time.Now().Add(2 * time.Minute))
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				ws.Close()
				return nil, fmt.Errorf("waiting for the sandbox: %w", err)
			}
			if typ == websocket.TextMessage && strings.Contains(string(data), `"state":"error"`) {
				ws.Close()
				return nil, fmt.Errorf("sandbox failed: %s", data)
			}
			if typ == websocket.TextMessage && strings.Contains(string(data), `"state":"ready"`) {
				break
			}
		}
		ws.SetReadDeadline(time.Time{})
	}
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return ws, nil
}

func readPrefix(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "instance"))
	must(t, err)
	return strings.TrimSpace(string(b))
}

// labelledIDs are the sandboxes with this server's prefix of which any
// Docker object exists (what the provider lists: labelled containers,
// networks and volumes, and kind clusters).
func labelledIDs(ctx context.Context, t *testing.T, p sandbox.Provider, prefix string) []string {
	var ids []string
	for _, id := range sandboxIDs(ctx, t, p) {
		if strings.HasPrefix(id, prefix) {
			ids = append(ids, id)
		}
	}
	return ids
}

// reconcileState compares Docker with the store: orphans are sandboxes of
// which objects exist but the store has no record, missing are records
// of which nothing exists.
func reconcileState(ctx context.Context, t *testing.T, p sandbox.Provider, data, prefix string) (orphans, missing, ready []string) {
	db, err := store.Open(ctx, data)
	must(t, err)
	defer db.Close()
	recs, err := db.Sandboxes(ctx)
	must(t, err)
	var recorded []string
	for _, r := range recs {
		recorded = append(recorded, r.ID)
		if r.State == store.SandboxReady {
			ready = append(ready, r.ID)
		}
	}
	live := labelledIDs(ctx, t, p, prefix)
	for _, id := range live {
		if !slices.Contains(recorded, id) {
			orphans = append(orphans, id)
		}
	}
	for _, id := range recorded {
		if !slices.Contains(live, id) {
			missing = append(missing, id)
		}
	}
	return orphans, missing, ready
}

func listOwned(ctx context.Context, t *testing.T, p sandbox.Provider, ids []string) []sandbox.Sandbox {
	all, err := p.List(ctx)
	must(t, err)
	var out []sandbox.Sandbox
	for _, sb := range all {
		if slices.Contains(ids, sb.ID()) {
			out = append(out, sb)
		}
	}
	return out
}
