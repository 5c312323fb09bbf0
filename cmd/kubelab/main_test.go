package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kubelab/lessons"
)

// TestMain lets a test run the real kubelab command in a child process (the
// test binary itself), so it can be killed with SIGKILL like a real server.
func TestMain(m *testing.M) {
	if args := os.Getenv("KUBELAB_TEST_MAIN"); args != "" {
		os.Exit(run(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestLintBuiltInCourse(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"lint"}, &out, &errOut); code != 0 {
		t.Fatalf("lint of the built-in course: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !regexp.MustCompile(`^kubelab lint: \d+ tracks, \d+ lessons, \d+ steps: no problems\n$`).MatchString(errOut.String()) {
		t.Errorf("lint summary: %q", errOut.String())
	}
}

func TestLintBrokenLessons(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "demo"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "demo", "track.yaml"), []byte("title: Demo\norder: 1\ndescription: d\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "demo", "01-broken.md"), []byte(`---
title: Broken
minutes: 3
sandbox: shell
---

## A step

`+"```check\nid: x\ntitle: no kind\n```\n\n```check\nid: x\ntitle: dup\ncommand:\n  run: true\n```\n"), 0o644))
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"lint", dir}, &out, &errOut)
	if code != 1 {
		t.Fatalf("lint of a broken lesson: exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	file := filepath.Join(dir, "demo", "01-broken.md")
	for _, want := range []string{file + ":9: ", file + ":14: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("lint output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestServeSurvivesKill9 runs the real server, passes a step through a real
// terminal, kills the server with SIGKILL, starts it again on the same data
// directory and finds the progress still there.
func TestServeSurvivesKill9(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	lessonsDir, err := filepath.Abs("../../server/testdata/lessons")
	must(t, err)
	args := []string{"serve", "--addr", addr, "--data", data, "--sandbox", "shell", "--lessons", lessonsDir}

	srv := startServer(t, args)
	cookie := sessionCookie(t, base)

	ws := dialTerminal(t, base, cookie, "demo/hello")
	if res := check(t, base, cookie, `{"step":1}`); res.Passed {
		t.Fatalf("check passed before the work: %+v", res)
	}
	must(t, ws.WriteMessage(websocket.BinaryMessage, []byte("echo 'hello kubelab' > ~/greeting.txt; echo written-$((40+2))\n")))
	readUntil(t, ws, "written-42")
	if res := check(t, base, cookie, `{"step":1}`); !res.Passed {
		t.Fatalf("check failed after the work: %+v", res)
	}
	ws.Close()

	must(t, srv.Process.Signal(syscall.SIGKILL))
	_ = srv.Wait()

	startServer(t, args)
	body := get(t, base+"/api/progress", cookie)
	if !strings.Contains(body, `"lesson":"demo/hello","step":1,"passed":true`) {
		t.Fatalf("progress after kill -9 and restart: %s", body)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs `kubelab <args>` as a child process and waits for /healthz.
func startServer(t *testing.T, args []string) *exec.Cmd {
	t.Helper()
	cmd, _ := startServerLogs(t, args)
	return cmd
}

// syncBuffer is a bytes.Buffer that a child process writes to while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServerLogs is startServer that also returns the server's log.
func startServerLogs(t *testing.T, args []string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KUBELAB_TEST_MAIN="+strings.Join(args, "\x1f"))
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	must(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	addr := args[2]
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return cmd, logs
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not answer /healthz; log:\n%s", logs.String())
	return nil, nil
}

func sessionCookie(t *testing.T, base string) string {
	res, err := http.Get(base + "/")
	must(t, err)
	res.Body.Close()
	for _, c := range res.Cookies() {
		if c.Name == "kubelab_session" {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

func get(t *testing.T, url, cookie string) string {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Cookie", "kubelab_session="+cookie)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

type checkResult struct {
	Passed  bool
	Results []struct{ ID, Message string }
}

// csrfToken reads the CSRF token the server puts in every page's meta tag
// for this session, as app.js does.
func csrfToken(t *testing.T, base, cookie string) string {
	m := regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`).FindStringSubmatch(get(t, base+"/", cookie))
	if m == nil {
		t.Fatal("no CSRF token in the catalog page")
	}
	return m[1]
}

func check(t *testing.T, base, cookie, body string) checkResult {
	req, _ := http.NewRequest("POST", base+"/api/lessons/demo/hello/check", strings.NewReader(body))
	req.Header.Set("Cookie", "kubelab_session="+cookie)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", csrfToken(t, base, cookie))
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	defer res.Body.Close()
	var out checkResult
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || json.Unmarshal(b, &out) != nil {
		t.Fatalf("check: %d %s", res.StatusCode, b)
	}
	return out
}

func dialTerminal(t *testing.T, base, cookie, lesson string) *websocket.Conn {
	h := http.Header{}
	h.Set("Origin", base)
	h.Set("Cookie", "kubelab_session="+cookie)
	u := strings.Replace(base, "http://", "ws://", 1) + "/ws/terminal?tab=0&lesson=" + lesson
	ws, _, err := websocket.DefaultDialer.Dial(u, h)
	must(t, err)
	t.Cleanup(func() { ws.Close() })
	// wait until the sandbox says it is ready
	for {
		must(t, ws.SetReadDeadline(time.Now().Add(30*time.Second)))
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

func readUntil(t *testing.T, ws *websocket.Conn, marker string) {
	var out bytes.Buffer
	for !strings.Contains(out.String(), marker) {
		must(t, ws.SetReadDeadline(time.Now().Add(20*time.Second)))
		typ, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("reading terminal (got %q): %v", out.String(), err)
		}
		if typ == websocket.BinaryMessage {
			out.Write(data)
		}
	}

}

// TestInstancePrefix: a data directory keeps its sandbox ID prefix across
// restarts, two directories get their own, and a damaged file is an error.
func TestInstancePrefix(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	p1, err := instancePrefix(a)
	must(t, err)
	p2, err := instancePrefix(a)
	must(t, err)
	if p1 != p2 || !regexp.MustCompile(`^kl-[0-9a-f]{4}-$`).MatchString(p1) {
		t.Fatalf("prefix %q then %q; want the same kl-xxxx- twice", p1, p2)
	}
	// distinct with high probability; retry a collision once
	pb, err := instancePrefix(b)
	must(t, err)
	if pb == p1 {
		must(t, os.Remove(filepath.Join(b, "instance")))
		pb, err = instancePrefix(b)
		must(t, err)
	}
	if pb == p1 {
		t.Fatalf("two data directories share prefix %q", pb)
	}
	must(t, os.WriteFile(filepath.Join(a, "instance"), []byte("../../etc\n"), 0o644))
	if _, err := instancePrefix(a); err == nil || !strings.Contains(err.Error(), "is not a sandbox ID prefix") {
		t.Fatalf("damaged instance file: %v", err)
	}
}

// TestClusterImages: the warm pool preloads the images of lessons with a
// cluster, each once, and nothing for other lessons.
func TestClusterImages(t *testing.T) {
	t.Parallel()
	cat := &lessons.Catalog{Tracks: []*lessons.Track{
		{Lessons: []*lessons.Lesson{
			{Sandbox: lessons.SandboxKubernetes, Images: []string{"kubelab/python:v1", "kubelab/hello:v1"}},
			{Sandbox: lessons.SandboxDocker, Images: []string{"kubelab/registry:v1"}},
		}},
		{Lessons: []*lessons.Lesson{
			{Sandbox: lessons.SandboxKubernetes, Images: []string{"kubelab/hello:v1", "kubelab/hello:v2"}},
			{Sandbox: lessons.SandboxKubernetes, Images: []string{"kubelab/pytorch:v1"}, Addons: []string{"kubeflow-training"}},
		}},
	}}
	got := clusterImages(cat)
	want := []string{"kubelab/hello:v1", "kubelab/hello:v2", "kubelab/python:v1"}
	if !slices.Equal(got, want) {
		t.Fatalf("clusterImages = %q, want %q", got, want)
	}
}
