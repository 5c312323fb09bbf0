package checker

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// fakeTarget is a hand-written Target. run gets the 1-based number of the
// call; a nil run means the sandbox has no terminal.
type fakeTarget struct {
	mu         sync.Mutex
	calls      int
	run        func(n int, script string) (stdout, stderr string, code int, err error)
	kubeConfig *rest.Config
	kubeErr    error
	dockerHost string
	dockerErr  error
}

var _ Target = (*fakeTarget)(nil)

func (f *fakeTarget) Run(ctx context.Context, script string) ([]byte, []byte, int, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	if f.run == nil {
		return nil, nil, 0, ErrUnavailable
	}
	out, errOut, code, err := f.run(n, script)
	return []byte(out), []byte(errOut), code, err
}

func (f *fakeTarget) KubeConfig(ctx context.Context) (*rest.Config, error) {
	if f.kubeErr != nil {
		return nil, f.kubeErr
	}
	if f.kubeConfig != nil {
		return f.kubeConfig, nil
	}
	return &rest.Config{Host: "https://fake.invalid"}, nil
}

func (f *fakeTarget) DockerHost(ctx context.Context) (string, error) {
	if f.dockerErr != nil {
		return "", f.dockerErr
	}
	if f.dockerHost == "" {
		return "", ErrUnavailable
	}
	return f.dockerHost, nil
}

func (f *fakeTarget) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// testResources is what the fake cluster's discovery serves.
var testResources = []*metav1.APIResourceList{
	{
		GroupVersion: "v1",
		APIResources: []metav1.APIResource{
			{Name: "pods", SingularName: "pod", Namespaced: true, Kind: "Pod", ShortNames: []string{"po"}, Verbs: []string{"get", "list", "watch"}},
			{Name: "services", SingularName: "service", Namespaced: true, Kind: "Service", ShortNames: []string{"svc"}, Verbs: []string{"get", "list", "watch"}},
			{Name: "configmaps", SingularName: "configmap", Namespaced: true, Kind: "ConfigMap", ShortNames: []string{"cm"}, Verbs: []string{"get", "list", "watch"}},
			{Name: "namespaces", SingularName: "namespace", Namespaced: false, Kind: "Namespace", ShortNames: []string{"ns"}, Verbs: []string{"get", "list", "watch"}},
			{Name: "events", SingularName: "event", Namespaced: true, Kind: "Event", ShortNames: []string{"ev"}, Verbs: []string{"get", "list", "watch"}},
		},
	},
	{
		GroupVersion: "apps/v1",
		APIResources: []metav1.APIResource{
			{Name: "deployments", SingularName: "deployment", Namespaced: true, Kind: "Deployment", ShortNames: []string{"deploy"}, Verbs: []string{"get", "list", "watch"}},
			{Name: "statefulsets", SingularName: "statefulset", Namespaced: true, Kind: "StatefulSet", ShortNames: []string{"sts"}, Verbs: []string{"get", "list", "watch"}},
			{Name: "daemonsets", SingularName: "daemonset", Namespaced: true, Kind: "DaemonSet", ShortNames: []string{"ds"}, Verbs: []string{"get", "list", "watch"}},
			{Name: "controllerrevisions", SingularName: "controllerrevision", Namespaced: true, Kind: "ControllerRevision", Verbs: []string{"get", "list", "watch"}},
		},
	},
	{
		GroupVersion: "kubeflow.org/v1",
		APIResources: []metav1.APIResource{
			{Name: "notebooks", SingularName: "notebook", Namespaced: true, Kind: "Notebook", Verbs: []string{"get", "list", "watch"}},
		},
	},
}

// listKinds tells the dynamic fake the list kind of every resource.
func listKinds() map[schema.GroupVersionResource]string {
	out := map[schema.GroupVersionResource]string{}
	for _, l := range testResources {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		for _, r := range l.APIResources {
			out[gv.WithResource(r.Name)] = r.Kind + "List"
		}
	}
	return out
}

// readDocs splits a multi-document YAML fixture into JSON documents.
func readDocs(t testing.TB, file string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	var docs [][]byte
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if s := strings.TrimSpace(string(j)); s == "" || s == "null" {
			continue
		}
		docs = append(docs, j)
	}
	return docs
}

// fixture loads a cluster state into fake clients: the typed client gets
// the objects it knows, the dynamic client all of them. Discovery serves
// testResources, through the same mapper code as production.
func fixture(t *testing.T, file string) *kubeClients {
	t.Helper()
	var typed, dyn []runtime.Object
	decode := scheme.Codecs.UniversalDeserializer()
	for _, doc := range readDocs(t, file) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(doc); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		dyn = append(dyn, u)
		if obj, _, err := decode.Decode(doc, nil, nil); err == nil {
			typed = append(typed, obj)
		}
	}
	cs := k8sfake.NewClientset(typed...)
	cs.Discovery().(*fakediscovery.FakeDiscovery).Resources = testResources
	mapper, reset := newMapper(cs.Discovery())
	return &kubeClients{
		typed:   cs,
		dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds(), dyn...),
		mapper:  mapper,
		reset:   reset,
	}
}

// testEvaluator polls fast and uses kc (nil: building clients fails).
func testEvaluator(kc *kubeClients) *evaluator {
	return &evaluator{
		poll:       5 * time.Millisecond,
		attemptMax: 5 * time.Second,
		kube: func(*rest.Config) (*kubeClients, error) {
			if kc == nil {
				return nil, errors.New("no fake cluster")
			}
			return kc, nil
		},
	}
}

// mustCompile compiles a check block or fails the test.
func mustCompile(t *testing.T, kind, block string) *Spec {
	t.Helper()
	spec, err := Compile(kind, []byte(block))
	if err != nil {
		t.Fatalf("Compile(%s): %v\n%s", kind, err, block)
	}
	return spec.(*Spec)
}

// evalBlock compiles block and evaluates it once with e against target.
func evalBlock(t *testing.T, e *evaluator, target Target, kind, block string) Result {
	t.Helper()
	return e.evaluate(t.Context(), target, Check{ID: "c", Title: "a check", Spec: mustCompile(t, kind, block)})
}

// wantResult asserts the pass/fail and the exact message of a result.
func wantResult(t *testing.T, got Result, passed bool, msg string) {
	t.Helper()
	if got.Passed != passed || got.Message != msg {
		t.Errorf("got passed=%v %q\nwant passed=%v %q", got.Passed, got.Message, passed, msg)
	}
}
