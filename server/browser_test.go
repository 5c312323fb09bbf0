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
	if _, err := os.Stat("../web/dist/app.js"); err != nil {
		t.Fatal("web/dist/app.js is missing: run `make web` (make test does it) before go test")
	}
	ts := MustOpenServer(t, "")
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
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	var rows, status string
	var passed bool
	err := chromedp.Run(ctx,
		chromedp.Navigate(ts.URL+"/lessons/demo/hello"),
		chromedp.WaitVisible(`.xterm-rows`, chromedp.ByQuery),
		// the sandbox is ready when the status panel hides
		chromedp.WaitNotPresent(`#term-status:not([hidden])`, chromedp.ByQuery),
		chromedp.Click(`button.run[data-step="1"][data-block="0"]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('.xterm-rows').innerText.includes('greeting.txt')`, nil, chromedp.WithPollingTimeout(20*time.Second)),
	)
	if err != nil {
		t.Fatalf("browser: run a block: %v", err)
	}
	// A learner clicks Check again if the command had not finished yet.
	for try := 0; try < 20 && !passed; try++ {
		err = chromedp.Run(ctx,
			chromedp.Click(`button.check[data-step="1"]`, chromedp.ByQuery),
			chromedp.Poll(`!document.querySelector('#step-1 .result[data-check="greeting"]').classList.contains('pending') && !document.querySelector('button.check[data-step="1"]').disabled`, nil, chromedp.WithPollingTimeout(20*time.Second)),
			chromedp.Evaluate(`document.querySelector('#step-1 .result[data-check="greeting"]').classList.contains('pass')`, &passed),
		)
		if err != nil {
			t.Fatalf("browser: check: %v", err)
		}
		if !passed {
			_ = chromedp.Run(ctx, chromedp.Sleep(250*time.Millisecond))
		}
	}
	err = chromedp.Run(ctx,
		chromedp.WaitVisible(`#step-1.passed`, chromedp.ByQuery),
		chromedp.Text(`.xterm-rows`, &rows, chromedp.ByQuery),
		chromedp.Text(`#step-1 .check-status`, &status, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("browser: %v (terminal rows: %q, status: %q)", err, rows, status)
	}
	if !passed || !strings.Contains(status, "Step passed") {
		t.Fatalf("step 1 should pass: result pass=%v status=%q", passed, status)
	}
	if !strings.Contains(rows, "greeting.txt") {
		t.Fatalf("the terminal should show the command Run typed, got %q", rows)
	}
	if *screenshot != "" {
		var png []byte
		if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 90)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
