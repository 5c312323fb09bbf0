package checker

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

const proxyPrefix = "/api/v1/namespaces/default/services/"

func TestHTTP(t *testing.T) {
	t.Parallel()
	api := newFakeAPIServer(t, "testdata/cluster.yaml", map[string]proxyReply{
		proxyPrefix + "web:80/proxy/":          {200, "hello v1\nfrom web-5f6b-h8m2q\n"},
		proxyPrefix + "web:80/proxy/healthz":   {503, "not ready"},
		proxyPrefix + "web:80/proxy/created":   {201, ""},
		proxyPrefix + "web:80/proxy/static/":   {200, "index"},
		proxyPrefix + "web:80/proxy/api?x=1":   {200, `{"x": 1}`},
		proxyPrefix + "web:http/proxy/":        {200, "hello v1"},
		proxyPrefix + "web/proxy/":             {200, "hello v1"},
		proxyPrefix + "https:web:80/proxy/":    {200, "secure"},
		proxyPrefix + "web:80/proxy/empty":     {200, ""},
		proxyPrefix + "web:80/proxy/noep":      {503, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"no endpoints available for service \"web\"","reason":"ServiceUnavailable","code":503}`},
		proxyPrefix + "web:80/proxy/refused":   {502, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"error trying to reach service: dial tcp 10.244.0.7:8080: connect: connection refused","code":502}`},
		proxyPrefix + "web:80/proxy/forbidden": {403, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"services \"web:80\" is forbidden: User \"learner\" cannot get resource \"services/proxy\"","reason":"Forbidden","code":403}`},
	})
	tests := []struct {
		name   string
		block  string
		passed bool
		msg    string
	}{
		{"status and body", "http: {service: web, port: 80, status: 200, body: hello v1}", true,
			"service web (port 80) answered GET / with 200 and a body matching hello v1"},
		{"body mismatch", "http: {service: web, port: 80, body: hello v2}", false,
			`service web (port 80) answered GET / with 200, but the body did not match hello v2: got "hello v1"`},
		{"empty body", "http: {service: web, port: 80, path: /empty, body: .}", false,
			"service web (port 80) answered GET /empty with 200, but the body was empty, expected a match for ."},
		{"status mismatch", "http: {service: web, port: 80, path: /healthz, status: 200}", false,
			"service web (port 80) answered GET /healthz with 503, expected 200"},
		{"any 2xx by default", "http: {service: web, port: 80, path: /created}", true,
			"service web (port 80) answered GET /created with 201"},
		{"not 2xx by default", "http: {service: web, port: 80, path: /healthz}", false,
			"service web (port 80) answered GET /healthz with 503, expected a 2xx status"},
		{"expected error status", "http: {service: web, port: 80, path: /healthz, status: 503}", true,
			"service web (port 80) answered GET /healthz with 503"},
		{"trailing slash kept", "http: {service: web, port: 80, path: /static/}", true,
			"service web (port 80) answered GET /static/ with 200"},
		{"query kept", "http: {service: web, port: 80, path: '/api?x=1', body: '\"x\"'}", true,
			`service web (port 80) answered GET /api?x=1 with 200 and a body matching "x"`},
		{"port by name", "http: {service: web, port: http}", true,
			"service web (port http) answered GET / with 200"},
		{"the only port", "http: {service: web}", true,
			"service web answered GET / with 200"},
		{"https", "http: {service: web, port: 80, scheme: https, body: secure}", true,
			"service web (port 80) answered GET / with 200 and a body matching secure"},
		{"port missing", "http: {service: web, port: 8080}", false,
			"service web has no port 8080 (ports: 80/TCP http)"},
		{"several ports", "http: {service: shop}", false,
			"service shop has 2 ports (80/TCP http, 443/TCP https); the check must name one"},
		{"service missing", "http: {service: api, port: 80}", false,
			"no service named api in namespace default (found: shop, web)"},
		{"service missing in an empty namespace", "http: {service: web, namespace: tools}", false,
			"no service named web in namespace tools (found none)"},
		{"no endpoints", "http: {service: web, port: 80, path: /noep}", false,
			"service web (port 80) has no ready endpoints: no ready pod matches its selector app=web"},
		{"connection refused", "http: {service: web, port: 80, path: /refused}", false,
			"service web (port 80): nothing listens on the target port of its pods (connection refused)"},
		{"other proxy error", "http: {service: web, port: 80, path: /forbidden}", false,
			`could not reach service web (port 80): services "web:80" is forbidden: User "learner" cannot get resource "services/proxy"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := &fakeTarget{kubeConfig: &rest.Config{Host: api.srv.URL}}
			spec := mustCompile(t, "http", tt.block)
			got := Evaluate(t.Context(), target, Check{ID: "h", Spec: spec})
			wantResult(t, got, tt.passed, tt.msg)
		})
	}
}

// The real clients, built from the target's config, resolve types through
// discovery and read objects from a real HTTP server.
func TestKubeThroughRealClients(t *testing.T) {
	t.Parallel()
	api := newFakeAPIServer(t, "testdata/cluster.yaml", nil)
	target := &fakeTarget{kubeConfig: &rest.Config{Host: api.srv.URL}}
	tests := []struct {
		kind, block string
		passed      bool
		msg         string
	}{
		{"kube", "kube: {resource: deploy/web, expect: [{path: .status.readyReplicas, equals: 2}]}", true,
			"deployment/web .status.readyReplicas is 2"},
		{"kube", "kube: {resource: notebook/my-nb, expect: [{path: .status.readyReplicas, gte: 1}]}", true,
			"notebook/my-nb .status.readyReplicas is 1 (at least 1)"},
		{"kube", "kube: {resource: deployments/webb}", false,
			"no deployment named webb in namespace default (found: api, db, fresh, stuck, web)"},
		{"kube", "kube: {resource: cm, selector: app=web, count: 2}", true,
			"2 configmaps match app=web in namespace default"},
		{"kube", "kube: {resource: widgets/x}", false,
			`the cluster has no resource type "widgets" (is its CRD installed?)`},
		{"pods", "pods: {selector: app=web, ready: true}", false,
			"2 of 3 pods ready; web-7d9c-x2k4p: ImagePullBackOff (image kubelab/helo:v1 not found)"},
		{"rollout", "rollout: {resource: deployment/web}", false,
			"deployment/web: 1 of 3 replicas updated; web-7d9c-x2k4p: ImagePullBackOff (image kubelab/helo:v1 not found)"},
	}
	for _, tt := range tests {
		t.Run(tt.block, func(t *testing.T) {
			t.Parallel()
			got := Evaluate(t.Context(), target, Check{ID: "k", Spec: mustCompile(t, tt.kind, tt.block)})
			wantResult(t, got, tt.passed, tt.msg)
		})
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	for _, p := range api.seen {
		if strings.Contains(p, "/events") && !strings.Contains(p, "fieldSelector=") {
			t.Errorf("events were listed without a field selector: %s", p)
		}
	}
}

func TestReadOnlyTransport(t *testing.T) {
	t.Parallel()
	api := newFakeAPIServer(t, "testdata/cluster.yaml", nil)
	cfg := &rest.Config{Host: api.srv.URL}
	kc, err := newKubeClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WrapTransport != nil {
		t.Error("newKubeClients changed the caller's config")
	}
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "evil"}}
	writes := []struct {
		name string
		do   func() error
		want string
	}{
		{"typed create", func() error {
			_, err := kc.typed.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
			return err
		}, "checker is read-only: refused POST /api/v1/namespaces/default/configmaps"},
		{"typed patch", func() error {
			_, err := kc.typed.AppsV1().Deployments("default").Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{})
			return err
		}, "checker is read-only: refused PATCH /apis/apps/v1/namespaces/default/deployments/web"},
		{"typed update", func() error {
			_, err := kc.typed.AppsV1().Deployments("default").Update(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.UpdateOptions{})
			return err
		}, "checker is read-only: refused PUT /apis/apps/v1/namespaces/default/deployments/web"},
		{"dynamic delete", func() error {
			info, err := kc.resolve("deploy")
			if err != nil {
				return err
			}
			return kc.dynamic.Resource(info.gvr).Namespace("default").Delete(ctx, "web", metav1.DeleteOptions{})
		}, "checker is read-only: refused DELETE /apis/apps/v1/namespaces/default/deployments/web"},
		{"raw post", func() error {
			return kc.core.Post().AbsPath("/api/v1/namespaces/default/pods/web/eviction").Do(ctx).Error()
		}, "checker is read-only: refused POST /api/v1/namespaces/default/pods/web/eviction"},
	}
	for _, w := range writes {
		err := w.do()
		if err == nil || !strings.Contains(err.Error(), w.want) {
			t.Errorf("%s: got %v, want an error containing %q", w.name, err, w.want)
		}
	}
	// Reads go through the same clients.
	if _, err := kc.typed.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("read through the read-only client: %v", err)
	}
}
