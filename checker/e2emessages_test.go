package checker

import (
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

// The wrong solutions server/e2e_test.go plays on a real sandbox, and the
// exact messages it asserts, pinned here against the fakes where they can
// run on every build. The blocks are the checks of
// server/testdata/e2e/cluster/01-deploy.md, evaluated once (their timeout
// would only retry the same answer).

// Step 1: a Deployment web of 3 ready replicas of kubelab/hello:v1.
var e2eStep1 = []struct{ id, kind, block string }{
	{"web-three", "kube", `
kube:
  resource: deployments/web
  expect:
    - path: .spec.replicas
      equals: 3
    - path: .status.readyReplicas
      equals: 3`},
	{"web-image", "rollout", `
rollout:
  resource: deployment/web
  image: kubelab/hello:v1`},
}

func TestE2EWrongImage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fixture string
		want    []Result // ID, Passed, Message
	}{
		{"the learner deployed kubelab/hello:v2", "testdata/web-hello-v2.yaml", []Result{
			{ID: "web-three", Passed: true, Message: "deployment/web .spec.replicas is 3, .status.readyReplicas is 3"},
			{ID: "web-image", Message: "deployment/web uses image kubelab/hello:v2, expected kubelab/hello:v1"},
		}},
		{"rolled back to kubelab/hello:v1", "testdata/web-hello-v1.yaml", []Result{
			{ID: "web-three", Passed: true, Message: "deployment/web .spec.replicas is 3, .status.readyReplicas is 3"},
			{ID: "web-image", Passed: true, Message: "deployment/web rolled out: 3 of 3 replicas available with image kubelab/hello:v1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPIServer(t, tt.fixture, nil)
			var cs []Check
			for _, c := range e2eStep1 {
				cs = append(cs, Check{ID: c.id, Spec: mustCompile(t, c.kind, c.block)})
			}
			got := EvaluateAll(t.Context(), &fakeTarget{kubeConfig: &rest.Config{Host: api.srv.URL}}, cs)
			for i, w := range tt.want {
				if got[i].ID != w.ID {
					t.Fatalf("result %d is %s, want %s", i, got[i].ID, w.ID)
				}
				wantResult(t, got[i], w.Passed, w.Message)
			}
		})
	}
}

// Step 2: a container api, running, publishing 8080 on 8080.
const e2eStep2 = `
docker:
  container: api
  state: running
  ports: ["8080:8080/tcp"]`

func TestE2EStoppedContainer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		engine string
		passed bool
		msg    string
	}{
		{"after docker stop api", "testdata/engine-api-stopped.yaml", false,
			"container api is exited (code 0), expected running"},
		{"after docker start api", "testdata/engine-api-running.yaml", true,
			"container api is running, publishes 8080:8080/tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			engine := newFakeEngine(t, tt.engine)
			target := &fakeTarget{dockerHost: "tcp://" + strings.TrimPrefix(engine.URL, "http://")}
			got := Evaluate(t.Context(), target, Check{ID: "api-container", Spec: mustCompile(t, "docker", e2eStep2)})
			wantResult(t, got, tt.passed, tt.msg)
		})
	}
}
