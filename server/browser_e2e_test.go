//go:build e2e

package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"kubelab/sandbox"
	"kubelab/sandbox/kind"
)

// TestBrowserPyTorchJob: a learner follows the built-in lesson
// kubeflow/pytorchjob in Chromium on a real kind sandbox. They click the
// lesson's Run buttons step by step (all but the one that watches pods
// until Ctrl+C), see the job's pods train in the terminal, and every
// step's checks pass when they click Check.
func TestBrowserPyTorchJob(t *testing.T) {
	openKindServer(t) // fails without Docker
	ts := openServer(t, "", "../lessons/content", func(log *slog.Logger) sandbox.Provider {
		return kind.New(kind.Options{Logger: log})
	})
	ctx := startBrowser(t)
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/lessons/kubeflow/pytorchjob")); err != nil {
		t.Fatalf("browser: open the lesson: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	if err := chromedp.Do(tctx,
		chromedp.WaitVisible(chromedp.CSS(`.xterm-rows`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#term-status:not([hidden])`)),
	); err != nil {
		t.Fatalf("browser: the sandbox (cluster, operator, images) never got ready: %v", err)
	}
	t.Logf("figure: sandbox with a cluster and the Training Operator ready in the page: %.1f s", time.Since(start).Seconds())

	// run clicks a Run button: the block is typed into the terminal, and
	// the shell runs it after what was typed before (as for a learner who
	// clicks ahead).
	run := func(step, block int) {
		t.Helper()
		if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`button.run[data-step="%d"][data-block="%d"]`, step, block)))); err != nil {
			t.Fatalf("browser: click Run %d.%d: %v", step, block, err)
		}
	}
	// check clicks Check until the step passes, as a learner clicks again
	// while an image is pushed or a job still runs.
	check := func(step int, limit time.Duration) {
		t.Helper()
		began := time.Now()
		for {
			if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`button.check[data-step="%d"]`, step)))); err != nil {
				t.Fatalf("browser: click Check %d: %v", step, err)
			}
			idle := fmt.Sprintf(`!document.querySelector('button.check[data-step="%d"]').disabled`, step)
			if _, err := chromedp.Run(tctx, chromedp.Poll[bool](idle, chromedp.WithPollingTimeout(5*time.Minute))); err != nil {
				t.Fatalf("browser: check %d never answered: %v", step, err)
			}
			passed, err := chromedp.Run(tctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById('step-%d').classList.contains('passed')`, step)))
			if err != nil {
				t.Fatal(err)
			}
			if passed {
				t.Logf("step %d passed in the page after %.1f s", step, time.Since(began).Seconds())
				return
			}
			if time.Since(began) > limit {
				results, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(fmt.Sprintf(`#step-%d .results`, step))))
				rows, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`.xterm-rows`)))
				t.Fatalf("browser: step %d does not pass after %v: %s\nthe terminal shows:\n%s", step, limit, results, rows)
			}
			_ = chromedp.Do(tctx, chromedp.Sleep(5*time.Second))
		}
	}
	// shows waits until the terminal's visible rows hold every want.
	shows := func(what string, want ...string) {
		t.Helper()
		js := `(() => { const s = document.querySelector('.xterm-rows').innerText; return ` + jsAll(want) + `; })()`
		if _, err := chromedp.Run(tctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(2*time.Minute))); err != nil {
			rows, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`.xterm-rows`)))
			t.Fatalf("browser: the terminal never showed %s (%q):\n%s", what, want, rows)
		}
		t.Logf("the terminal shows %s", what)
	}

	run(2, 0)
	check(2, 2*time.Minute)
	run(3, 0) // build and push a 1.3 GB image
	check(3, 15*time.Minute)
	run(4, 0) // the PyTorchJob; block 1 watches pods until Ctrl+C: a learner skips it here
	run(4, 2) // wait for it, its logs
	check(4, 10*time.Minute)
	shows("the training's logs", "accuracy=", "saved /")
	run(5, 0)
	check(5, 5*time.Minute)
	run(6, 0)
	check(6, 10*time.Minute)
	shows("the two-worker job's pods", "train-2w-worker-1", "Completed")
	t.Logf("figure: the lesson followed in the browser, Run to last check: %.1f s", time.Since(start).Seconds())
}

// jsAll is a JavaScript expression true when the string s holds every
// element of want.
func jsAll(want []string) string {
	var parts []string
	for _, w := range want {
		b, _ := json.Marshal(w)
		parts = append(parts, "s.includes("+string(b)+")")
	}
	return strings.Join(parts, " && ")
}
