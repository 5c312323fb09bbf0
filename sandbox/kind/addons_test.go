package kind

import (
	"bytes"
	"errors"
	htmltemplate "html/template"
	"io"
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"kubelab/sandbox"
	"kubelab/sandbox/images"
)

// addonObjects decodes the manifests of addon name.
func addonObjects(t *testing.T, name string) map[string]*unstructured.Unstructured {
	t.Helper()
	as, err := lookupAddons([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := as[0].manifests()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(imagePlaceholder)) {
		t.Errorf("manifests of %s keep the image placeholder", name)
	}
	objs := map[string]*unstructured.Unstructured{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode manifests of %s: %v", name, err)
		}
		if m == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			t.Errorf("object without apiVersion, kind or name: %v", m)
			continue
		}
		objs[u.GetKind()+"/"+u.GetName()] = u
	}
	return objs
}

// get fetches the object key or fails the test.
func get(t *testing.T, objs map[string]*unstructured.Unstructured, key string) *unstructured.Unstructured {
	t.Helper()
	u, ok := objs[key]
	if !ok {
		keys := make([]string, 0, len(objs))
		for k := range objs {
			keys = append(keys, k)
		}
		t.Fatalf("no %s among %v", key, keys)
	}
	return u
}

// flagValue returns the value of --name=value in args, and whether it is there.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func TestKubeflowTrainingManifests(t *testing.T) {
	t.Parallel()
	objs := addonObjects(t, sandbox.AddonKubeflowTraining)
	clusterScoped := []string{"Namespace", "ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration"}
	for key, u := range objs {
		if !slices.Contains(clusterScoped, u.GetKind()) && u.GetNamespace() != "kubeflow" {
			t.Errorf("%s is in namespace %q, want kubeflow", key, u.GetNamespace())
		}
	}
	ns := get(t, objs, "Namespace/kubeflow")
	if ns.GetLabels()["kubelab.io/system"] != "true" {
		t.Errorf("namespace kubeflow is not labelled kubelab.io/system=true: learners could change the operator")
	}

	dep := get(t, objs, "Deployment/training-operator")
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("deployment has %d containers, want 1", len(containers))
	}
	c := containers[0].(map[string]any)
	if c["image"] != images.TrainingOperatorImage {
		t.Errorf("operator image %v, want %s", c["image"], images.TrainingOperatorImage)
	}
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for flag, want := range map[string]string{
		"enable-scheme":                "pytorchjob",
		"pytorch-init-container-image": images.TrainingOperatorImage,
	} {
		if got, _ := flagValue(args, flag); got != want {
			t.Errorf("--%s=%q, want %q", flag, got, want)
		}
	}

	// The webhook's pieces must name each other the way the operator
	// looks for them (pkg/cert of the module).
	svcName, _ := flagValue(args, "webhook-service-name")
	secretName, _ := flagValue(args, "webhook-secret-name")
	svc := get(t, objs, "Service/"+svcName)
	get(t, objs, "Secret/"+secretName)
	vols, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "volumes")
	if !slices.ContainsFunc(vols, func(v any) bool {
		name, _, _ := unstructured.NestedString(v.(map[string]any), "secret", "secretName")
		return name == secretName
	}) {
		t.Errorf("deployment volumes %v do not mount secret %s", vols, secretName)
	}
	tmplLabels, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "labels")
	selector, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	for k, v := range selector {
		if tmplLabels[k] != v {
			t.Errorf("service selector %s=%s does not select the operator's pods (labels %v)", k, v, tmplLabels)
		}
	}
	vwc := get(t, objs, "ValidatingWebhookConfiguration/validator.training-operator.kubeflow.org")
	hooks, _, _ := unstructured.NestedSlice(vwc.Object, "webhooks")
	if len(hooks) != 1 {
		t.Fatalf("webhook configuration has %d webhooks, want 1 (pytorchjobs)", len(hooks))
	}
	ref, _, _ := unstructured.NestedStringMap(hooks[0].(map[string]any), "clientConfig", "service")
	if ref["name"] != svcName || ref["namespace"] != "kubeflow" || ref["path"] != "/validate-kubeflow-org-v1-pytorchjob" {
		t.Errorf("webhook calls %v, want service %s in kubeflow at /validate-kubeflow-org-v1-pytorchjob", ref, svcName)
	}

	// The init container template is where the operator reads it, and
	// makes a container that waits for the master's full name.
	file, _ := flagValue(args, "pytorch-init-container-template-file")
	dir, key := path.Split(file)
	mounts, _, _ := unstructured.NestedSlice(c, "volumeMounts")
	var volume string
	for _, m := range mounts {
		if m := m.(map[string]any); m["mountPath"] == strings.TrimSuffix(dir, "/") {
			volume, _ = m["name"].(string)
		}
	}
	var cmName string
	for _, v := range vols {
		if v := v.(map[string]any); v["name"] == volume {
			cmName, _, _ = unstructured.NestedString(v, "configMap", "name")
		}
	}
	cm := get(t, objs, "ConfigMap/"+cmName)
	tmpl, _, _ := unstructured.NestedString(cm.Object, "data", key)
	init := renderInitContainer(t, tmpl)
	if init.Image != "kubelab/x:v1" || !strings.Contains(strings.Join(init.Command, " "), "nslookup train-master-0.$JOB_NAMESPACE.svc.cluster.local") {
		t.Errorf("init container %+v does not wait for the master's full name", init)
	}
	if len(init.Env) != 1 || init.Env[0].Name != "JOB_NAMESPACE" || init.Env[0].ValueFrom == nil || init.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("init container env %+v lacks JOB_NAMESPACE from the pod's namespace", init.Env)
	}

	// The operator's service account is bound to its role.
	crb := get(t, objs, "ClusterRoleBinding/kubelab:training-operator")
	subjects, _, _ := unstructured.NestedSlice(crb.Object, "subjects")
	sa, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "spec", "serviceAccountName")
	if len(subjects) != 1 || subjects[0].(map[string]any)["name"] != sa || subjects[0].(map[string]any)["namespace"] != "kubeflow" {
		t.Errorf("binding subjects %v, want service account kubeflow/%s", subjects, sa)
	}
	get(t, objs, "ServiceAccount/"+sa)
	get(t, objs, "ClusterRole/kubelab:training-operator")
}

// renderInitContainer renders the operator's init container template the
// way the operator does (html/template, then YAML into a list of
// containers; pkg/controller.v1/pytorch/initcontainer.go).
func renderInitContainer(t *testing.T, tmpl string) corev1.Container {
	t.Helper()
	tpl, err := htmltemplate.New("container").Parse(tmpl)
	if err != nil {
		t.Fatalf("parse the init container template: %v", err)
	}
	var buf bytes.Buffer
	if err := tpl.Execute(&buf, struct {
		MasterAddr, InitContainerImage string
		MaxTries                       int
	}{"train-master-0", "kubelab/x:v1", 100}); err != nil {
		t.Fatalf("execute the init container template: %v", err)
	}
	var cs []corev1.Container
	if err := utilyaml.Unmarshal(buf.Bytes(), &cs); err != nil {
		t.Fatalf("init container template renders bad YAML: %v\n%s", err, buf.String())
	}
	if len(cs) != 1 {
		t.Fatalf("init container template makes %d containers, want 1", len(cs))
	}
	return cs[0]
}

func TestLookupAddons(t *testing.T) {
	t.Parallel()
	as, err := lookupAddons([]string{sandbox.AddonKubeflowTraining})
	if err != nil || len(as) != 1 {
		t.Fatalf("lookupAddons(kubeflow-training) = %v, %v", as, err)
	}
	if got := addonImages(as); !slices.Equal(got, []string{images.TrainingOperatorImage}) {
		t.Errorf("addon images %v, want [%s]", got, images.TrainingOperatorImage)
	}
	if len(as[0].crds) == 0 || !strings.HasPrefix(as[0].crds[0], images.TrainingOperatorCRDDir+"/") {
		t.Errorf("CRDs %v are not read from %s", as[0].crds, images.TrainingOperatorCRDDir)
	}
	if _, err := lookupAddons([]string{"kubeflow-pipelines"}); !errors.Is(err, sandbox.ErrUnsupported) || !strings.Contains(err.Error(), "kubeflow-training") {
		t.Errorf("unknown addon: %v, want ErrUnsupported naming the known ones", err)
	}
}
