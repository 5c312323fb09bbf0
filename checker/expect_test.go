package checker

import (
	"encoding/json"
	"fmt"
	"testing"
)

// webDeployment is deployment/web from the cluster fixture, as the dynamic
// client gives it.
func webDeployment(t *testing.T) map[string]any {
	t.Helper()
	for _, doc := range readDocs(t, "testdata/cluster.yaml") {
		var obj map[string]any
		if err := json.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		md, _ := obj["metadata"].(map[string]any)
		if obj["kind"] == "Deployment" && md["name"] == "web" {
			return obj
		}
	}
	t.Fatal("no deployment web in the fixture")
	return nil
}

func TestExpectations(t *testing.T) {
	t.Parallel()
	obj := webDeployment(t)
	tests := []struct {
		expect string // one YAML flow mapping
		ok     bool
		detail string
	}{
		// equals: numbers, strings, bools, lists, maps, null
		{`{path: .spec.replicas, equals: 3}`, true, "is 3"},
		{`{path: .spec.replicas, equals: 3.0}`, true, "is 3"},
		{`{path: .spec.replicas, equals: 4}`, false, ": expected 4, found 3"},
		{`{path: .spec.replicas, equals: "3"}`, true, "is 3"},
		{`{path: '{.metadata.annotations.deployment\.kubernetes\.io/revision}', equals: 2}`, true, `is "2"`},
		{`{path: .metadata.name, equals: web}`, true, `is "web"`},
		{`{path: .metadata.name, equals: api}`, false, `: expected "api", found "web"`},
		{`{path: .metadata.labels, equals: {app: web, tier: front}}`, true, `is {"app":"web","tier":"front"}`},
		{`{path: .metadata.labels, equals: {app: web}}`, false, `: expected {"app":"web"}, found {"app":"web","tier":"front"}`},
		{`{path: "{.spec.template.spec.containers[*].name}", equals: [web, sidecar]}`, true, `is ["web","sidecar"]`},
		{`{path: .spec.paused, equals: null}`, true, "is not set"},
		{`{path: .spec.paused, equals: false}`, false, ": expected false, found nothing"},
		{`{path: .status.readyReplicas, equals: 3}`, false, ": expected 3, found 2"},
		{`{path: .status.unavailableReplicas, equals: 1}`, false, ": expected 1, found nothing"},
		// matches
		{`{path: '.spec.template.spec.containers[0].image', matches: "^kubelab/"}`, true, `matches ^kubelab/ ("kubelab/helo:v1")`},
		{`{path: '.spec.template.spec.containers[0].image', matches: ":v2$"}`, false, `: expected a match for :v2$, found "kubelab/helo:v1"`},
		{`{path: "{.spec.template.spec.containers[*].image}", matches: ":"}`, true, `matches : (["kubelab/helo:v1","busybox:1.36"])`},
		{`{path: "{.spec.template.spec.containers[*].image}", matches: "kubelab"}`, false, `: expected a match for kubelab, found ["kubelab/helo:v1","busybox:1.36"]`},
		{`{path: .spec.replicas, matches: "^[0-9]+$"}`, true, `matches ^[0-9]+$ (3)`},
		{`{path: .spec.nothing, matches: x}`, false, ": expected a match for x, found nothing"},
		// exists
		{`{path: .status.readyReplicas, exists: true}`, true, "is set (2)"},
		{`{path: .status.unavailableReplicas, exists: true}`, false, ": expected it to be set, found nothing"},
		{`{path: .status.unavailableReplicas, exists: false}`, true, "is not set"},
		{`{path: .spec.replicas, exists: false}`, false, ": expected it to be unset, found 3"},
		{`{path: "{.spec.template.spec.containers[?(@.name==\"db\")]}", exists: false}`, true, "is not set"},
		// contains: lists, strings, maps
		{`{path: "{.spec.template.spec.containers[*].name}", contains: sidecar}`, true, `contains "sidecar"`},
		{`{path: "{.spec.template.spec.containers[*].name}", contains: db}`, false, `: expected to contain "db", found ["web","sidecar"]`},
		{`{path: .spec.template.spec.containers, contains: {name: web, image: kubelab/helo:v1}}`, true, `contains {"image":"kubelab/helo:v1","name":"web"}`},
		{`{path: '.spec.template.spec.containers[0].env', contains: {name: MODE, value: prod}}`, true, `contains {"name":"MODE","value":"prod"}`},
		{`{path: '.spec.template.spec.containers[0].env', contains: {name: MODE, value: dev}}`, false, `: expected to contain {"name":"MODE","value":"dev"}, found [{"name":"MODE","value":"prod"},{"name":"COLOR","value":"blue"}]`},
		{`{path: '.spec.template.spec.containers[0].image', contains: helo}`, true, `contains "helo"`},
		{`{path: '.spec.template.spec.containers[0].image', contains: hello}`, false, `: expected to contain "hello", found "kubelab/helo:v1"`},
		{`{path: .metadata.labels, contains: tier}`, true, `contains "tier"`},
		{`{path: .metadata.labels, contains: {app: web}}`, true, `contains {"app":"web"}`},
		{`{path: .metadata.labels, contains: {app: api}}`, false, `: expected to contain {"app":"api"}, found {"app":"web","tier":"front"}`},
		{`{path: '.spec.template.spec.containers[0].ports[*].containerPort', contains: 8080}`, true, "contains 8080"},
		{`{path: .spec.missing, contains: x}`, false, `: expected to contain "x", found nothing`},
		// gte, lte, with quantities
		{`{path: .status.readyReplicas, gte: 2}`, true, "is 2 (at least 2)"},
		{`{path: .status.readyReplicas, gte: 3}`, false, ": expected at least 3, found 2"},
		{`{path: .status.readyReplicas, lte: 2}`, true, "is 2 (at most 2)"},
		{`{path: .status.readyReplicas, lte: 1.5}`, false, ": expected at most 1.5, found 2"},
		{`{path: '.spec.template.spec.containers[0].resources.limits.memory', lte: 256Mi}`, true, `is "128Mi" (at most "256Mi")`},
		{`{path: '.spec.template.spec.containers[0].resources.limits.cpu', gte: 1}`, false, `: expected at least 1, found "500m"`},
		{`{path: '.spec.template.spec.containers[0].resources.limits.cpu', gte: 0.5}`, true, `is "500m" (at least 0.5)`},
		{`{path: .metadata.name, gte: 1}`, false, `: expected a number at least 1, found "web"`},
		{`{path: .status.unavailableReplicas, lte: 0}`, false, ": expected at most 0, found nothing"},
		// len
		{`{path: .spec.template.spec.containers, len: 2}`, true, "has length 2"},
		{`{path: "{.spec.template.spec.containers[*].name}", len: 2}`, true, "has length 2"},
		{`{path: .spec.template.spec.containers, len: 1}`, false, ": expected length 1, found 2"},
		{`{path: .metadata.labels, len: 2}`, true, "has length 2"},
		{`{path: .metadata.name, len: 3}`, true, "has length 3"},
		{`{path: .spec.missing, len: 0}`, true, "has length 0"},
		{`{path: .spec.replicas, len: 1}`, false, ": expected length 1, found 3, which has no length"},
		// paths with braces, without the leading dot
		{`{path: status.readyReplicas, equals: 2}`, true, "is 2"},
		{`{path: "{.status.readyReplicas}", equals: 2}`, true, "is 2"},
	}
	for _, tt := range tests {
		t.Run(tt.expect, func(t *testing.T) {
			t.Parallel()
			spec := mustCompile(t, "kube", fmt.Sprintf("kube:\n  resource: deploy/web\n  expect:\n    - %s\n", tt.expect))
			ok, detail, err := spec.Kube.Expect[0].eval(obj)
			if err != nil {
				t.Fatalf("eval: %v", err)
			}
			if ok != tt.ok || detail != tt.detail {
				t.Errorf("got %v %q, want %v %q", ok, detail, tt.ok, tt.detail)
			}
		})
	}
}

func TestRangeString(t *testing.T) {
	t.Parallel()
	for r, want := range map[Range]string{
		{Min: 3, Max: 3}:  "3",
		{Min: 1, Max: -1}: "at least 1",
		{Min: 0, Max: 2}:  "at most 2",
		{Min: 2, Max: 4}:  "2 to 4",
	} {
		if got := r.String(); got != want {
			t.Errorf("%+v: got %q, want %q", r, got, want)
		}
	}
}
