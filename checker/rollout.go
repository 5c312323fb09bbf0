package checker

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// RolloutSpec checks that a Deployment, StatefulSet or DaemonSet finished
// rolling out, the way `kubectl rollout status` decides it, and optionally
// which image and revision it rolled out.
type RolloutSpec struct {
	Resource  string // as written: "deployment/web", "sts/db", "ds/agent"
	Kind      string // deployment, statefulset or daemonset
	Name      string
	Namespace string // default "default"
	Image     string // optional expected image of Container
	Container string // optional container name; default the first
	Revision  int64  // optional expected revision; 0 is not checked
}

// rolloutKinds maps what authors write to the three kinds with a rollout.
var rolloutKinds = map[string]string{
	"deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
	"statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset",
	"daemonset": "daemonset", "daemonsets": "daemonset", "ds": "daemonset",
}

func compileRollout(n *yaml.Node) (*RolloutSpec, error) {
	f, err := mapping(n, "rollout", "resource", "namespace", "image", "container", "revision")
	if err != nil {
		return nil, err
	}
	r := &RolloutSpec{}
	if r.Resource, err = f.required("resource"); err != nil {
		return nil, err
	}
	typ, name, err := splitResource(r.Resource)
	if err != nil {
		return nil, errAt(f.get("resource"), "rollout.resource: %v", err)
	}
	r.Kind = rolloutKinds[strings.TrimSuffix(strings.ToLower(typ), ".apps")]
	if r.Kind == "" || name == "" {
		return nil, errAt(f.get("resource"), "rollout.resource must be deployment/NAME, statefulset/NAME or daemonset/NAME (got %q)", r.Resource)
	}
	r.Name = name
	if r.Namespace, err = namespace(f); err != nil {
		return nil, err
	}
	if r.Image, err = f.str("image"); err != nil {
		return nil, err
	}
	if r.Container, err = f.str("container"); err != nil {
		return nil, err
	}
	if r.Container != "" && r.Image == "" {
		return nil, errAt(f.key("container"), "rollout.container names the container whose image to check: give rollout.image too")
	}
	if rev, ok, err := f.integer("revision"); err != nil {
		return nil, err
	} else if ok {
		if rev < 1 {
			return nil, errAt(f.get("revision"), "rollout.revision must be 1 or more")
		}
		r.Revision = int64(rev)
	}
	return r, nil
}

// sameImage compares image references the way Docker does: "nginx" is
// "docker.io/library/nginx:latest".
func sameImage(a, b string) bool {
	return normalImage(a) == normalImage(b)
}

func normalImage(s string) string {
	ref, err := reference.ParseDockerRef(strings.TrimSpace(s))
	if err != nil {
		return strings.TrimSpace(s)
	}
	return ref.String()
}

// rolloutTarget is what the three kinds share.
type rolloutTarget struct {
	ref      string // "deployment/web"
	uid      types.UID
	template corev1.PodTemplateSpec
	selector *metav1.LabelSelector
}

func (s *session) rollout(ctx context.Context, r *RolloutSpec) outcome {
	kc, o, ok := s.kubeClients(ctx)
	if !ok {
		return o
	}
	apps := kc.typed.AppsV1()
	ns := r.Namespace
	where := " in namespace " + ns
	ref := r.Kind + "/" + r.Name
	var (
		t      rolloutTarget
		status func() (bool, string)
		rev    func() (int64, bool)
		err    error
	)
	switch r.Kind {
	case "deployment":
		var d *appsv1.Deployment
		d, err = apps.Deployments(ns).Get(ctx, r.Name, metav1.GetOptions{})
		if err == nil {
			t = rolloutTarget{ref, d.UID, d.Spec.Template, d.Spec.Selector}
			status = func() (bool, string) { return deploymentStatus(ref, d) }
			rev = func() (int64, bool) {
				n, err := strconv.ParseInt(d.Annotations["deployment.kubernetes.io/revision"], 10, 64)
				return n, err == nil
			}
		}
	case "statefulset":
		var st *appsv1.StatefulSet
		st, err = apps.StatefulSets(ns).Get(ctx, r.Name, metav1.GetOptions{})
		if err == nil {
			t = rolloutTarget{ref, st.UID, st.Spec.Template, st.Spec.Selector}
			status = func() (bool, string) { return statefulSetStatus(ref, st) }
			rev = func() (int64, bool) { return s.controllerRevision(ctx, kc, ns, st.UID) }
		}
	case "daemonset":
		var ds *appsv1.DaemonSet
		ds, err = apps.DaemonSets(ns).Get(ctx, r.Name, metav1.GetOptions{})
		if err == nil {
			t = rolloutTarget{ref, ds.UID, ds.Spec.Template, ds.Spec.Selector}
			status = func() (bool, string) { return daemonSetStatus(ref, ds) }
			rev = func() (int64, bool) { return s.controllerRevision(ctx, kc, ns, ds.UID) }
		}
	default:
		return outcome{msg: "this check cannot be evaluated", err: fmt.Errorf("rollout of kind %q", r.Kind), final: true}
	}
	if apierrors.IsNotFound(err) {
		return fail("no %s named %s%s%s", r.Kind, r.Name, where, foundList(rolloutNames(ctx, kc, r.Kind, ns)))
	}
	if err != nil {
		return kubeErr(err, r.Kind+"s"+where)
	}
	image := ""
	if r.Image != "" {
		c, found := findContainer(t.template.Spec.Containers, r.Container)
		if !found {
			var cs []string
			for _, c := range t.template.Spec.Containers {
				cs = append(cs, c.Name)
			}
			return fail("%s has no container named %s (containers: %s)", ref, r.Container, names(cs))
		}
		if !sameImage(c.Image, r.Image) {
			return fail("%s uses image %s, expected %s", ref, c.Image, r.Image)
		}
		image = c.Image
	}
	if r.Revision > 0 {
		got, ok := rev()
		switch {
		case !ok:
			return fail("%s has no revision yet, expected revision %d", ref, r.Revision)
		case got != r.Revision:
			return fail("%s is at revision %d, expected %d", ref, got, r.Revision)
		}
	}
	done, msg := status()
	if !done {
		if d := s.podDiagnosis(ctx, kc, ns, t.selector); d != "" {
			msg += "; " + d
		}
		return fail("%s", msg)
	}
	if image != "" {
		msg += " with image " + image
	}
	return pass("%s", msg)
}

// rolloutNames lists the objects of kind in ns, for "(found: ...)".
func rolloutNames(ctx context.Context, kc *kubeClients, kind, ns string) []string {
	apps := kc.typed.AppsV1()
	var out []string
	switch kind {
	case "deployment":
		if l, err := apps.Deployments(ns).List(ctx, metav1.ListOptions{}); err == nil {
			for _, it := range l.Items {
				out = append(out, it.Name)
			}
		}
	case "statefulset":
		if l, err := apps.StatefulSets(ns).List(ctx, metav1.ListOptions{}); err == nil {
			for _, it := range l.Items {
				out = append(out, it.Name)
			}
		}
	case "daemonset":
		if l, err := apps.DaemonSets(ns).List(ctx, metav1.ListOptions{}); err == nil {
			for _, it := range l.Items {
				out = append(out, it.Name)
			}
		}
	}
	return out
}

// findContainer is the named container, or the first when name is "".
func findContainer(cs []corev1.Container, name string) (corev1.Container, bool) {
	for _, c := range cs {
		if name == "" || c.Name == name {
			return c, true
		}
	}
	return corev1.Container{}, false
}

// deploymentStatus follows kubectl rollout status for Deployments.
func deploymentStatus(ref string, d *appsv1.Deployment) (bool, string) {
	if d.Generation > d.Status.ObservedGeneration {
		return false, ref + ": waiting for the controller to see the new spec"
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, ref + " exceeded its progress deadline"
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.UpdatedReplicas < want:
		return false, fmt.Sprintf("%s: %d of %d replicas updated", ref, st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return false, fmt.Sprintf("%s: %s pending termination", ref,
			plural(int(st.Replicas-st.UpdatedReplicas), "old replica", "old replicas"))
	case st.AvailableReplicas < st.UpdatedReplicas:
		return false, fmt.Sprintf("%s: %d of %d updated replicas available", ref, st.AvailableReplicas, st.UpdatedReplicas)
	}
	return true, fmt.Sprintf("%s rolled out: %d of %d replicas available", ref, st.AvailableReplicas, want)
}

// statefulSetStatus follows kubectl rollout status for StatefulSets.
func statefulSetStatus(ref string, s *appsv1.StatefulSet) (bool, string) {
	if s.Spec.UpdateStrategy.Type != "" && s.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		return false, ref + " uses the " + string(s.Spec.UpdateStrategy.Type) + " update strategy; a rollout can only be followed with RollingUpdate"
	}
	st := s.Status
	if st.ObservedGeneration == 0 || s.Generation > st.ObservedGeneration {
		return false, ref + ": waiting for the controller to see the new spec"
	}
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	if st.ReadyReplicas < want {
		return false, fmt.Sprintf("%s: %d of %d replicas ready", ref, st.ReadyReplicas, want)
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
		target := want - *ru.Partition
		if st.UpdatedReplicas < target {
			return false, fmt.Sprintf("%s: %d of %d replicas updated (partition %d)", ref, st.UpdatedReplicas, target, *ru.Partition)
		}
		return true, fmt.Sprintf("%s rolled out to its partition: %d of %d replicas updated", ref, st.UpdatedReplicas, target)
	}
	if st.UpdateRevision != st.CurrentRevision {
		return false, fmt.Sprintf("%s: %d of %d replicas updated to revision %s", ref, st.UpdatedReplicas, want, st.UpdateRevision)
	}
	return true, fmt.Sprintf("%s rolled out: %d of %d replicas ready", ref, st.ReadyReplicas, want)
}

// daemonSetStatus follows kubectl rollout status for DaemonSets.
func daemonSetStatus(ref string, d *appsv1.DaemonSet) (bool, string) {
	if d.Spec.UpdateStrategy.Type != "" && d.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		return false, ref + " uses the " + string(d.Spec.UpdateStrategy.Type) + " update strategy; a rollout can only be followed with RollingUpdate"
	}
	if d.Generation > d.Status.ObservedGeneration {
		return false, ref + ": waiting for the controller to see the new spec"
	}
	st := d.Status
	switch {
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%s: %d of %d pods updated", ref, st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberAvailable < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%s: %d of %d updated pods available", ref, st.NumberAvailable, st.DesiredNumberScheduled)
	}
	return true, fmt.Sprintf("%s rolled out: %d of %d pods available", ref, st.NumberAvailable, st.DesiredNumberScheduled)
}

// controllerRevision is the highest revision among the ControllerRevisions
// owned by uid (what kubectl rollout history lists for StatefulSets and
// DaemonSets).
func (s *session) controllerRevision(ctx context.Context, kc *kubeClients, ns string, uid types.UID) (int64, bool) {
	list, err := kc.typed.AppsV1().ControllerRevisions(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, false
	}
	best, found := int64(0), false
	for _, cr := range list.Items {
		for _, o := range cr.OwnerReferences {
			if o.UID == uid && cr.Revision > best {
				best, found = cr.Revision, true
			}
		}
	}
	return best, found
}

// podDiagnosis names the newest pod of selector that is not ready, and why:
// "web-7d9c: ImagePullBackOff (image kubelab/helo:v1 not found)". "" when
// every pod is ready or the pods cannot be read.
func (s *session) podDiagnosis(ctx context.Context, kc *kubeClients, ns string, sel *metav1.LabelSelector) string {
	if sel == nil {
		return ""
	}
	ls, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return ""
	}
	list, err := kc.typed.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: ls.String()})
	if err != nil {
		return ""
	}
	var bad []*corev1.Pod
	for i := range list.Items {
		p := &list.Items[i]
		if p.DeletionTimestamp == nil && !podReady(p) {
			bad = append(bad, p)
		}
	}
	if len(bad) == 0 {
		return ""
	}
	// The newest pods are the new revision's: they say why it is stuck.
	sort.Slice(bad, func(i, j int) bool {
		ti, tj := bad[i].CreationTimestamp.Time, bad[j].CreationTimestamp.Time
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return bad[i].Name < bad[j].Name
	})
	p := bad[0]
	diag := podProblem(p, latestWarning(ctx, kc.typed, p))
	if diag == "" {
		diag = phaseOf(p) + ", not ready"
	}
	return p.Name + ": " + diag
}
