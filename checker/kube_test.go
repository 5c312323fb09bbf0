package checker

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
)

func TestKube(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		block  string
		passed bool
		msg    string
	}{
		{
			name: "exists, short name",
			block: `
kube:
  resource: deploy/api`,
			passed: true,
			msg:    "deployment/api exists in namespace default",
		},
		{
			name: "singular type with group",
			block: `
kube:
  resource: deployment.apps/api
  expect:
    - path: .status.readyReplicas
      equals: 2`,
			passed: true,
			msg:    "deployment/api .status.readyReplicas is 2",
		},
		{
			name: "missing object lists what there is",
			block: `
kube:
  resource: deployments/webb`,
			msg: "no deployment named webb in namespace default (found: api, db, fresh, stuck, web)",
		},
		{
			name: "missing in an empty namespace",
			block: `
kube:
  resource: deployments/web
  namespace: staging`,
			msg: "no deployment named web in namespace staging (found none)",
		},
		{
			name: "expectation fails with expected and found",
			block: `
kube:
  resource: deployments/web
  expect:
    - path: .spec.replicas
      equals: 3
    - path: .status.readyReplicas
      equals: 3`,
			msg: "deployment/web .status.readyReplicas: expected 3, found 2",
		},
		{
			name: "every failure is listed",
			block: `
kube:
  resource: deployments/web
  expect:
    - path: .status.readyReplicas
      gte: 3
    - path: .status.unavailableReplicas
      equals: 0`,
			msg: "deployment/web .status.readyReplicas: expected at least 3, found 2; deployment/web .status.unavailableReplicas: expected 0, found nothing",
		},
		{
			name: "several expectations pass",
			block: `
kube:
  resource: deployments/web
  expect:
    - path: "{.spec.template.spec.containers[*].name}"
      contains: sidecar
    - path: .metadata.labels.tier
      matches: ^fr`,
			passed: true,
			msg:    `deployment/web .spec.template.spec.containers[*].name contains "sidecar", .metadata.labels.tier matches ^fr ("front")`,
		},
		{
			name: "custom resource",
			block: `
kube:
  resource: notebooks/my-nb
  expect:
    - path: .status.readyReplicas
      equals: 1`,
			passed: true,
			msg:    "notebook/my-nb .status.readyReplicas is 1",
		},
		{
			name: "unknown type",
			block: `
kube:
  resource: inferenceservices/sklearn`,
			msg: `the cluster has no resource type "inferenceservices" (is its CRD installed?)`,
		},
		{
			name: "cluster-scoped ignores the namespace",
			block: `
kube:
  resource: ns/kube-system
  namespace: web`,
			passed: true,
			msg:    "namespace/kube-system exists",
		},
		{
			name: "cluster-scoped missing",
			block: `
kube:
  resource: namespaces/dev`,
			msg: "no namespace named dev (found: default, kube-system)",
		},
		{
			name: "absent passes when gone",
			block: `
kube:
  resource: deployments/old
  absent: true`,
			passed: true,
			msg:    "no deployment named old in namespace default",
		},
		{
			name: "absent fails while it exists",
			block: `
kube:
  resource: deployments/web
  absent: true`,
			msg: "deployment/web still exists in namespace default",
		},
		{
			name: "selector with count",
			block: `
kube:
  resource: configmaps
  selector: app=web
  count: 2`,
			passed: true,
			msg:    "2 configmaps match app=web in namespace default",
		},
		{
			name: "selector with wrong count",
			block: `
kube:
  resource: cm
  selector: app=web
  count: {min: 3}`,
			msg: "2 configmaps match app=web in namespace default, expected at least 3",
		},
		{
			name: "selector matching nothing",
			block: `
kube:
  resource: configmaps
  selector: app=nope`,
			msg: "no configmaps match app=nope in namespace default",
		},
		{
			name: "list without selector",
			block: `
kube:
  resource: statefulsets
  count: 2`,
			passed: true,
			msg:    "2 statefulsets exist in namespace default",
		},
		{
			name: "one listed object",
			block: `
kube:
  resource: daemonsets
  count: 1`,
			passed: true,
			msg:    "1 daemonset exists in namespace default",
		},
		{
			name: "every match must meet the expectations",
			block: `
kube:
  resource: configmaps
  selector: app=web
  expect:
    - path: .data.mode
      equals: prod`,
			msg: `1 of 2 configmaps matching app=web in namespace default meet the expectations; configmap/extra .data.mode: expected "prod", found "dev"`,
		},
		{
			name: "count of matches meeting the expectations",
			block: `
kube:
  resource: configmaps
  selector: app=web
  count: 1
  expect:
    - path: .data.mode
      equals: prod`,
			passed: true,
			msg:    "1 of 2 configmaps matching app=web in namespace default meet the expectations",
		},
		{
			name: "absent selector fails while matches exist",
			block: `
kube:
  resource: configmaps
  selector: app=web
  absent: true`,
			msg: "2 configmaps match app=web in namespace default (extra, settings), expected none",
		},
		{
			name: "absent selector passes",
			block: `
kube:
  resource: pods
  selector: app=gone
  absent: true`,
			passed: true,
			msg:    "no pods match app=gone in namespace default",
		},
	}
	kc := fixture(t, "testdata/cluster.yaml")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := evalBlock(t, testEvaluator(kc), &fakeTarget{}, "kube", tt.block)
			wantResult(t, got, tt.passed, tt.msg)
		})
	}
}

// A CRD installed while the check waits is found: discovery is re-read
// after a type is not found.
func TestKubeWaitsForACRD(t *testing.T) {
	t.Parallel()
	kc := fixture(t, "testdata/cluster.yaml")
	disc := kc.typed.Discovery().(*fakediscovery.FakeDiscovery)
	disc.Resources = testResources[:2] // no kubeflow.org yet
	groupReads := 0
	disc.PrependReactor("get", "group", func(action k8stesting.Action) (bool, runtime.Object, error) {
		groupReads++
		if groupReads == 3 { // the learner installs the CRD
			disc.Resources = testResources
		}
		return false, nil, nil
	})
	c := Check{ID: "nb", Timeout: 10 * time.Second, Spec: mustCompile(t, "kube", "kube: {resource: notebooks/my-nb}")}
	got := testEvaluator(kc).evaluate(t.Context(), &fakeTarget{}, c)
	wantResult(t, got, true, "notebook/my-nb exists in namespace default")
	if groupReads < 3 {
		t.Errorf("discovery was read %d times, want a re-read after each miss", groupReads)
	}

	once := testEvaluator(fixture(t, "testdata/cluster.yaml"))
	kc2, _ := once.kube(nil)
	kc2.typed.Discovery().(*fakediscovery.FakeDiscovery).Resources = testResources[:2]
	got = once.evaluate(t.Context(), &fakeTarget{}, Check{ID: "nb", Spec: c.Spec})
	wantResult(t, got, false, `the cluster has no resource type "notebooks" (is its CRD installed?)`)
}

func TestKubeClusterDown(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	target := &fakeTarget{kubeConfig: &rest.Config{Host: srv.URL}}
	for _, block := range []string{
		"kube: {resource: deploy/web}",
		"pods: {selector: app=web}",
		"rollout: {resource: deploy/web}",
		"http: {service: web}",
	} {
		kind, _, _ := strings.Cut(block, ":")
		got := Evaluate(t.Context(), target, Check{ID: "k", Spec: mustCompile(t, kind, block)})
		wantResult(t, got, false, "could not reach the Kubernetes cluster; it may still be starting")
		if got.Err == nil {
			t.Errorf("%s: Result.Err is nil", kind)
		}
	}
}
