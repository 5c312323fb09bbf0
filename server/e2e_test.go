//go:build e2e

package server_test

import (
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/kind"
	"kubelab/server"
)

// openKindServer is MustOpenServer on the kind provider over the e2e
// lessons. It fails, never skips, without a Docker engine.
func openKindServer(t *testing.T) *testServer {
	t.Helper()
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("make e2e needs a Docker engine: docker info: %v: %s", err, out)
	}
	return openServer(t, "", "testdata/e2e", func(log *slog.Logger) sandbox.Provider {
		return kind.New(kind.Options{Logger: log})
	})
}

// TestKindLearnerPath: a learner's terminal reaches their own cluster and
// engine; checks fail with a reason before the work and pass after it.
func TestKindLearnerPath(t *testing.T) {
	ts := openKindServer(t)
	c := newClient(t, ts)
	start := time.Now()
	term, _, err := c.dialTerminal("tab=0&lesson=cluster/deploy", "")
	if err != nil {
		t.Fatal(err)
	}
	term.waitForLong("ready", 8*time.Minute)
	t.Logf("figure: cold sandbox with a cluster, through the server: %.1f s", time.Since(start).Seconds())

	term.typeText("kubectl get nodes; echo nodes-$((40+2))\n")
	term.waitOutputLong("nodes-42", time.Minute)
	if out := term.output(); !strings.Contains(out, " Ready ") {
		t.Fatalf("kubectl get nodes shows no Ready node:\n%s", out)
	}
	term.typeText("docker run --rm kubelab/hello:v1 --version; echo hello-$((40+3))\n")
	term.waitOutputLong("hello-43", 2*time.Minute)
	if out := term.output(); !strings.Contains(out, "v1\r\nhello-43") {
		t.Fatalf("docker run of the preloaded image did not print its version:\n%s", out)
	}

	// Before: the check names what is missing.
	code, res := c.check("cluster/deploy", `{"step":1}`)
	if code != 200 || res.Passed || !strings.Contains(res.Results[0].Message, "no deployment named web in namespace default") {
		t.Fatalf("before: %d %+v", code, res)
	}
	// A wrong solution: 2 replicas, not 3.
	term.typeText("kubectl create deployment web --image=kubelab/hello:v1 --replicas=2 && kubectl rollout status deployment/web --timeout=120s; echo step-$((1+1))\n")
	term.waitOutputLong("step-2", 3*time.Minute)
	code, res = c.check("cluster/deploy", `{"step":1}`)
	if code != 200 || res.Passed || !strings.Contains(res.Results[0].Message, "deployment/web .spec.replicas: expected 3, found 2") {
		t.Fatalf("wrong replicas: %d %+v", code, res)
	}
	term.typeText("kubectl scale deployment/web --replicas=3; echo step-$((2+1))\n")
	term.waitOutputLong("step-3", time.Minute)
	code, res = c.check("cluster/deploy", `{"step":1}`)
	if code != 200 || !res.Passed {
		t.Fatalf("after: %d %+v", code, res)
	}

	// The learner's own engine: a wrong port first, then the right one.
	term.typeText("docker run -d --name api -p 8081:8080 kubelab/hello:v1; echo step-$((3+1))\n")
	term.waitOutputLong("step-4", time.Minute)
	code, res = c.check("cluster/deploy", `{"step":2}`)
	if code != 200 || res.Passed || !strings.Contains(res.Results[0].Message, "host port 8081, expected 8080") {
		t.Fatalf("wrong port: %d %+v", code, res)
	}
	term.typeText("docker rm -f api && docker run -d --name api -p 8080:8080 kubelab/hello:v1; echo step-$((4+1))\n")
	term.waitOutputLong("step-5", time.Minute)
	code, res = c.check("cluster/deploy", `{"step":2}`)
	if code != 200 || !res.Passed {
		t.Fatalf("right port: %d %+v", code, res)
	}

	// A stopped container: docker stop leaves api exited (kubelab/hello
	// exits 0 on SIGTERM); docker start runs it again with its ports.
	term.typeText("docker stop api; echo step-$((5+1))\n")
	term.waitOutputLong("step-6", time.Minute)
	code, res = c.check("cluster/deploy", `{"step":2}`)
	if got := resultOf(t, res, "api-container"); code != 200 || res.Passed ||
		got.Message != "container api is exited (code 0), expected running" {
		t.Fatalf("stopped container: %d %+v", code, res)
	}
	term.typeText("docker start api; echo step-$((6+1))\n")
	term.waitOutputLong("step-7", time.Minute)
	code, res = c.check("cluster/deploy", `{"step":2}`)
	if code != 200 || !res.Passed {
		t.Fatalf("started again: %d %+v", code, res)
	}

	// A wrong image: web rolled to kubelab/hello:v2, where the step wants
	// v1. The replicas are right, so only the image check fails.
	term.typeText("kubectl set image deployment/web '*=kubelab/hello:v2' && kubectl rollout status deployment/web --timeout=120s; echo step-$((7+1))\n")
	term.waitOutputLong("step-8", 3*time.Minute)
	code, res = c.check("cluster/deploy", `{"step":1}`)
	if got := resultOf(t, res, "web-image"); code != 200 || res.Passed ||
		got.Message != "deployment/web uses image kubelab/hello:v2, expected kubelab/hello:v1" {
		t.Fatalf("wrong image: %d %+v", code, res)
	}
	if got := resultOf(t, res, "web-three"); !got.Passed {
		t.Fatalf("wrong image: the replicas check failed too: %+v", got)
	}
	term.typeText("kubectl set image deployment/web '*=kubelab/hello:v1' && kubectl rollout status deployment/web --timeout=120s; echo step-$((8+1))\n")
	term.waitOutputLong("step-9", 3*time.Minute)
	code, res = c.check("cluster/deploy", `{"step":1}`)
	if code != 200 || !res.Passed {
		t.Fatalf("image back to v1: %d %+v", code, res)
	}

	// The sandbox is culled (as the idle timeout does); the learner comes
	// back: a new cluster and engine, with both passed steps replayed.
	old, _ := ts.Manager.Lookup(c.cookie())
	if err := ts.Manager.Release(t.Context(), c.cookie()); err != nil {
		t.Fatal(err)
	}
	term.conn.Close()
	start = time.Now()
	term, _, err = c.dialTerminal("tab=1&lesson=cluster/deploy", "")
	if err != nil {
		t.Fatal(err)
	}
	term.waitForLong("ready", 10*time.Minute)
	t.Logf("figure: culled sandbox rebuilt with 2 passed steps replayed, through the server: %.1f s", time.Since(start).Seconds())
	var restoring []string
	for _, m := range term.messages() {
		if msg, _ := m["message"].(string); strings.HasPrefix(msg, "Restoring your progress") {
			restoring = append(restoring, msg)
		}
	}
	t.Logf("the page said: %q", restoring)
	if len(restoring) != 2 {
		t.Errorf("want a \"Restoring your progress\" status per passed step, got %q", restoring)
	}
	if sb, _ := ts.Manager.Lookup(c.cookie()); sb == nil || sb.ID() == old.ID() {
		t.Fatal("want a new sandbox after the cull")
	}
	for step := 1; step <= 2; step++ {
		code, res = c.check("cluster/deploy", fmt.Sprintf(`{"step":%d}`, step))
		if code != 200 || !res.Passed {
			t.Fatalf("step %d in the rebuilt sandbox: %d %+v", step, code, res)
		}
		t.Logf("step %d passes in the rebuilt sandbox (%d checks)", step, len(res.Results))
	}
}

// resultOf is the result of the check id in res; it fails the test when
// there is none.
func resultOf(t *testing.T, res server.CheckResponse, id string) server.CheckResult {
	t.Helper()
	for _, r := range res.Results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no result for check %s in %+v", id, res)
	return server.CheckResult{}
}
