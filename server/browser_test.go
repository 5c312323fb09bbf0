package server_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"kubelab/sandbox"
)

var screenshot = flag.String("screenshot", "", "write a PNG of the lesson page after the browser test passes (for the README)")

// chromiumPath finds headless Chromium: $KUBELAB_CHROMIUM, else chromium on
// PATH. `make test` installs it; without it this test fails, it never skips.
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("KUBELAB_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium for the browser test: run `make test` (it installs Debian's chromium as root) or set KUBELAB_CHROMIUM")
	return ""
}

// TestBrowserLesson drives headless Chromium through a lesson: the terminal
// connects, Run types a block into it, Check passes the step.
func TestBrowserLesson(t *testing.T) {
	ts := MustOpenServer(t, "")
	ctx := startBrowser(t)
	// The first action starts the browser; it must not run under a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/lessons/demo/hello")); err != nil {
		t.Fatalf("browser: open the lesson: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()
	browseLesson(t, tctx)
}

// startBrowser starts headless Chromium for one test.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat("../web/dist/app.js"); err != nil {
		t.Fatal("web/dist/app.js is missing: run `make web` (make test does it) before go test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	return ctx
}

// browseLesson runs a block and passes step 1 of demo/hello, open in tctx.
func browseLesson(t *testing.T, tctx context.Context) {
	t.Helper()
	err := chromedp.Do(tctx,
		chromedp.WaitVisible(chromedp.CSS(`.xterm-rows`)),
		// the sandbox is ready when the status panel hides
		chromedp.WaitNotPresent(chromedp.CSS(`#term-status:not([hidden])`)),
		chromedp.Click(chromedp.CSS(`button.run[data-step="1"][data-block="0"]`)),
	)
	if err != nil {
		t.Fatalf("browser: run a block: %v", err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.querySelector('.xterm-rows').innerText.includes('greeting.txt')`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("browser: the typed command never showed in the terminal: %v", err)
	}
	// A learner clicks Check again if the command had not finished yet.
	passed := false
	for try := 0; try < 20 && !passed; try++ {
		if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS(`button.check[data-step="1"]`))); err != nil {
			t.Fatalf("browser: click check: %v", err)
		}
		if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`!document.querySelector('#step-1 .result[data-check="greeting"]').classList.contains('pending') && !document.querySelector('button.check[data-step="1"]').disabled`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("browser: wait for the check: %v", err)
		}
		passed, err = chromedp.Run(tctx, chromedp.Evaluate[bool](`document.querySelector('#step-1 .result[data-check="greeting"]').classList.contains('pass')`))
		if err != nil {
			t.Fatalf("browser: read the result: %v", err)
		}
		if !passed {
			_ = chromedp.Do(tctx, chromedp.Sleep(250*time.Millisecond))
		}
	}
	if err := chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(`#step-1.passed`))); err != nil {
		t.Fatalf("browser: step 1 never marked passed: %v", err)
	}
	rows, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`.xterm-rows`)))
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`#step-1 .check-status`)))
	if err != nil {
		t.Fatal(err)
	}
	if !passed || !strings.Contains(status, "Step passed") {
		t.Fatalf("step 1 should pass: result pass=%v status=%q", passed, status)
	}
	if !strings.Contains(rows, "greeting.txt") {
		t.Fatalf("the terminal should show the command Run typed, got %q", rows)
	}
	if *screenshot != "" {
		png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBrowserLifetimeBanner: a sandbox near its end shows a warning with
// an Extend button; a click extends it and the warning goes.
func TestBrowserLifetimeBanner(t *testing.T) {
	ts := openServerWith(t, "", "testdata/lessons", shellProvider(t),
		sandbox.ManagerOptions{MaxLifetime: 10 * time.Minute, ExtendBy: 30 * time.Minute, MaxExtensions: 1})
	ctx := startBrowser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/lessons/demo/hello")); err != nil {
		t.Fatalf("browser: open the lesson: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(`#lifetime-extend`))); err != nil {
		t.Fatalf("browser: no Extend button on a sandbox 10 min from its end: %v", err)
	}
	msg, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`#lifetime-message`)))
	if err != nil {
		t.Fatal(err)
	}
	button, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`#lifetime-extend`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "Your sandbox ends in 10 min") || button != "Extend by 30 min" {
		t.Errorf("banner = %q, button %q", msg, button)
	}
	if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS(`#lifetime-extend`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#lifetime`))); err != nil {
		msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#lifetime-message`)))
		t.Fatalf("browser: the warning stayed after Extend (%q): %v", msg, err)
	}
	lt, ok := ts.Manager.Lifetime(learnerOfOnlySandbox(t, ts))
	if !ok || lt.ExtensionsLeft != 0 {
		t.Errorf("after the click: %+v, %v; want the one extension used", lt, ok)
	}
}

// learnerOfOnlySandbox is the owner of the one sandbox ts's store knows.
func learnerOfOnlySandbox(t *testing.T, ts *testServer) string {
	t.Helper()
	recs, err := ts.DB.Sandboxes(t.Context())
	if err != nil || len(recs) != 1 {
		t.Fatalf("sandbox records: %+v, %v; want one", recs, err)
	}
	return recs[0].Owner
}

// TestBrowserClassroom: in two browsers, an instructor creates a classroom
// with the form, a learner joins with its link and passes a step, and the
// instructor's dashboard grid shows the pass live.
func TestBrowserClassroom(t *testing.T) {
	ts, _, _ := openLocalServer(t)
	teacher, learner := startBrowser(t), startBrowser(t)
	for who, ctx := range map[string]context.Context{"ines": teacher, "alice": learner} {
		if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/login")); err != nil {
			t.Fatalf("browser of %s: %v", who, err)
		}
	}
	tctx, cancel := context.WithTimeout(teacher, 2*time.Minute)
	defer cancel()
	lctx, cancelL := context.WithTimeout(learner, 2*time.Minute)
	defer cancelL()
	login := func(ctx context.Context, user string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS(`form[action="/login"] input[name="username"]`), user),
			chromedp.SendKeys(chromedp.CSS(`form[action="/login"] input[name="password"]`), user+"-pw"),
			chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"]`)),
		); err != nil {
			t.Fatalf("browser: %s signs in: %v", user, err)
		}
	}
	login(tctx, "ines")
	login(lctx, "alice")

	// The instructor creates the classroom with the form.
	if err := chromedp.Do(tctx,
		chromedp.Navigate(ts.URL+"/classrooms"),
		chromedp.SendKeys(chromedp.CSS(`form.classroom-form input[name="name"]`), "Browser class"),
		chromedp.Click(chromedp.CSS(`form.classroom-form input[value="demo/hello"]`)),
		chromedp.Click(chromedp.CSS(`form.classroom-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.classroom-code a`)),
	); err != nil {
		t.Fatalf("browser: create the classroom: %v", err)
	}
	link, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector('.classroom-code a').href`))
	if err != nil {
		t.Fatal(err)
	}
	dashboard, err := chromedp.Run(tctx, chromedp.Evaluate[string](`location.pathname + "/dashboard"`))
	if err != nil {
		t.Fatal(err)
	}

	// The learner follows the link and joins.
	if err := chromedp.Do(lctx,
		chromedp.Navigate(link),
		chromedp.Click(chromedp.CSS(`form[action^="/join/"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/lessons/demo/hello"]`)),
	); err != nil {
		t.Fatalf("browser: the learner joins: %v", err)
	}
	// The instructor's dashboard is open before the learner works.
	if err := chromedp.Do(tctx,
		chromedp.Navigate(ts.URL+dashboard),
		chromedp.WaitVisible(chromedp.CSS(`td[data-cell="demo/hello#1"]`)),
	); err != nil {
		t.Fatalf("browser: the dashboard: %v", err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.getElementById('dashboard-status').textContent.includes('live')`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("browser: the dashboard's event stream: %v", err)
	}
	if err := chromedp.Do(lctx, chromedp.Navigate(ts.URL+"/lessons/demo/hello")); err != nil {
		t.Fatal(err)
	}
	browseLesson(t, lctx)
	passedAt := time.Now()
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.querySelector('td[data-cell="demo/hello#1"]').classList.contains('passed')`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		cell, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`td[data-cell="demo/hello#1"]`)))
		t.Fatalf("browser: the instructor's grid never showed the pass (cell %q): %v", cell, err)
	}
	t.Logf("the grid showed the pass %.2f s after the learner's page did", time.Since(passedAt).Seconds())
}
