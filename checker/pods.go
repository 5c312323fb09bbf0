package checker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kfields "k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// PodsSpec checks the pods a selector matches (or one named pod): how many,
// their phase, readiness and restarts. A failure names the first pod at
// fault and why (its waiting reason and latest Warning event).
type PodsSpec struct {
	Selector  string // label selector; or Name
	Name      string // one pod by name
	Namespace string // default "default"
	// Count is how many pods must meet the conditions; nil means at least
	// one, and all of them.
	Count    *Range
	Phase    corev1.PodPhase // "" any; Pending, Running, Succeeded, Failed
	Ready    *bool           // nil: not checked
	Restarts *Range          // restarts of all its containers; from {lte: N, gte: N}
}

var podPhases = []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown}

func compilePods(n *yaml.Node) (*PodsSpec, error) {
	f, err := mapping(n, "pods", "selector", "name", "namespace", "count", "phase", "ready", "restarts")
	if err != nil {
		return nil, err
	}
	p := &PodsSpec{}
	if p.Selector, err = selector(f, "selector"); err != nil {
		return nil, err
	}
	if p.Name, err = f.str("name"); err != nil {
		return nil, err
	}
	switch {
	case p.Selector == "" && p.Name == "":
		return nil, errAt(f.node, "pods.selector is required (or pods.name for one pod)")
	case p.Selector != "" && p.Name != "":
		return nil, errAt(f.key("name"), "pods: use selector or name, not both")
	}
	if p.Namespace, err = namespace(f); err != nil {
		return nil, err
	}
	if p.Count, err = f.countRange("count"); err != nil {
		return nil, err
	}
	if p.Count != nil && p.Name != "" {
		return nil, errAt(f.key("count"), "pods.count needs pods.selector, not pods.name")
	}
	phase, err := f.str("phase")
	if err != nil {
		return nil, err
	}
	if phase != "" {
		for _, ph := range podPhases {
			if strings.EqualFold(phase, string(ph)) {
				p.Phase = ph
			}
		}
		if p.Phase == "" {
			return nil, errAt(f.get("phase"), "pods.phase must be one of Pending, Running, Succeeded, Failed, Unknown (got %q)", phase)
		}
	}
	if ready, ok, err := f.boolean("ready"); err != nil {
		return nil, err
	} else if ok {
		p.Ready = &ready
	}
	if rn := f.get("restarts"); rn != nil {
		if rn.Kind != yaml.MappingNode {
			return nil, errAt(rn, "pods.restarts must be a mapping like {lte: 2}")
		}
		rf, err := mapping(rn, "pods.restarts", "lte", "gte")
		if err != nil {
			return nil, err
		}
		if p.Restarts, err = rf.bounds("gte", "lte"); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// conditions is what a pod must be, in words: "Running and ready with at
// most 2 restarts"; "" when only the count matters.
func (p *PodsSpec) conditions() string {
	var parts []string
	if p.Phase != "" {
		parts = append(parts, string(p.Phase))
	}
	if p.Ready != nil {
		parts = append(parts, map[bool]string{true: "ready", false: "not ready"}[*p.Ready])
	}
	s := strings.Join(parts, " and ")
	if p.Restarts != nil {
		if s != "" {
			s += " "
		}
		s += "with " + restartsText(*p.Restarts)
	}
	return s
}

// restartsText is "no restarts", "at most 1 restart", "at least 2 restarts".
func restartsText(r Range) string {
	if r.Max == 0 {
		return "no restarts"
	}
	n := r.Max
	if n < 0 {
		n = r.Min
	}
	if n == 1 {
		return r.String() + " restart"
	}
	return r.String() + " restarts"
}

// meets says whether pod meets the conditions; if not, why, in words
// completing "POD: ..." (the diagnosis is filled in later).
func (p *PodsSpec) meets(pod *corev1.Pod) (ok bool, why string) {
	if p.Phase != "" && pod.Status.Phase != p.Phase {
		return false, fmt.Sprintf("is %s, expected %s", phaseOf(pod), p.Phase)
	}
	if p.Ready != nil && podReady(pod) != *p.Ready {
		if *p.Ready {
			return false, "is not ready"
		}
		return false, "is ready, expected not ready"
	}
	if p.Restarts != nil {
		if n := restarts(pod); !p.Restarts.Contains(n) {
			return false, fmt.Sprintf("restarted %s, expected %s", plural(n, "time", "times"), restartsText(*p.Restarts))
		}
	}
	return true, ""
}

func phaseOf(pod *corev1.Pod) string {
	if pod.Status.Phase == "" {
		return "Pending"
	}
	return string(pod.Status.Phase)
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func restarts(pod *corev1.Pod) int {
	n := 0
	for _, st := range pod.Status.ContainerStatuses {
		n += int(st.RestartCount)
	}
	return n
}

func (s *session) pods(ctx context.Context, p *PodsSpec) outcome {
	kc, o, ok := s.kubeClients(ctx)
	if !ok {
		return o
	}
	where := " in namespace " + p.Namespace
	pods := kc.typed.CoreV1().Pods(p.Namespace)
	var list []corev1.Pod
	if p.Name != "" {
		pod, err := pods.Get(ctx, p.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			var found []string
			if all, err := pods.List(ctx, metav1.ListOptions{}); err == nil {
				for _, it := range all.Items {
					found = append(found, it.Name)
				}
			}
			return fail("no pod named %s%s%s", p.Name, where, foundList(found))
		}
		if err != nil {
			return kubeErr(err, "pods"+where)
		}
		list = []corev1.Pod{*pod}
	} else {
		all, err := pods.List(ctx, metav1.ListOptions{LabelSelector: p.Selector})
		if err != nil {
			return kubeErr(err, "pods"+where)
		}
		list = all.Items
	}
	live := list[:0:0]
	for _, pod := range list {
		if pod.DeletionTimestamp == nil { // terminating pods are on their way out
			live = append(live, pod)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].Name < live[j].Name })
	n := len(live)
	expected := ""
	if p.Count != nil {
		expected = ", expected " + p.Count.String()
	}
	if n == 0 {
		if p.Name != "" {
			return fail("pod %s is being deleted%s", p.Name, where)
		}
		if p.Count != nil && p.Count.Contains(0) {
			return pass("no pods match %s%s", p.Selector, where)
		}
		return fail("no pods match %s%s%s", p.Selector, where, expected)
	}
	cond := p.conditions()
	if cond == "" {
		if p.Count == nil || p.Count.Contains(n) {
			if p.Name != "" {
				return pass("pod %s exists%s", p.Name, where)
			}
			return pass("%s %s %s%s", plural(n, "pod", "pods"), verb(n, "matches", "match"), p.Selector, where)
		}
		return fail("%s %s %s%s%s", plural(n, "pod", "pods"), verb(n, "matches", "match"), p.Selector, where, expected)
	}
	good := 0
	var bad *corev1.Pod
	why := ""
	for i := range live {
		if ok, w := p.meets(&live[i]); ok {
			good++
		} else if bad == nil {
			bad, why = &live[i], w
		}
	}
	ok = good == n
	if p.Count != nil {
		ok = p.Count.Contains(good)
	}
	if p.Name != "" {
		if ok {
			return pass("pod %s is %s", p.Name, cond)
		}
		if diag := podProblem(bad, latestWarning(ctx, kc.typed, bad)); diag != "" {
			return fail("pod %s %s: %s", p.Name, why, diag)
		}
		return fail("pod %s %s", p.Name, why)
	}
	summary := fmt.Sprintf("%d of %d pods %s", good, n, cond)
	if ok {
		return pass("%s", summary)
	}
	msg := summary + expected
	if bad != nil {
		msg += "; " + bad.Name + ": " + explainPod(ctx, kc.typed, bad, why)
	}
	return fail("%s", msg)
}

// explainPod says why pod fails the conditions, after "NAME: " in a
// summary. The diagnosis alone says it when the summary already does
// ("2 of 3 pods ready; web-7d9c: ImagePullBackOff (...)"); otherwise it
// completes why ("restarted 5 times, expected at most 2: CrashLoopBackOff
// (...)").
func explainPod(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, why string) string {
	diag := podProblem(pod, latestWarning(ctx, cs, pod))
	switch {
	case diag == "":
		return why
	case why == "is not ready" || strings.HasPrefix(why, "is Pending,"):
		return diag
	}
	return why + ": " + diag
}

// latestWarning is the newest Warning event about pod, or nil. Events are
// context only: an error listing them is not reported.
func latestWarning(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod) *corev1.Event {
	sel := kfields.Set{"involvedObject.kind": "Pod", "involvedObject.name": pod.Name, "type": corev1.EventTypeWarning}
	list, err := cs.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	if err != nil {
		return nil
	}
	var best *corev1.Event
	for i := range list.Items {
		ev := &list.Items[i]
		// Filter here too: not every server (nor the fake) applies field selectors.
		if ev.Type != corev1.EventTypeWarning || ev.InvolvedObject.Name != pod.Name ||
			(ev.InvolvedObject.Kind != "" && ev.InvolvedObject.Kind != "Pod") ||
			(ev.InvolvedObject.UID != "" && pod.UID != "" && ev.InvolvedObject.UID != pod.UID) {
			continue
		}
		if best == nil || eventTime(ev).After(eventTime(best)) ||
			(eventTime(ev).Equal(eventTime(best)) && ev.Name > best.Name) {
			best = ev
		}
	}
	return best
}

// eventTime is when an event last happened.
func eventTime(ev *corev1.Event) time.Time {
	t := ev.CreationTimestamp.Time
	for _, c := range []time.Time{ev.FirstTimestamp.Time, ev.LastTimestamp.Time, ev.EventTime.Time} {
		if c.After(t) {
			t = c
		}
	}
	if ev.Series != nil && ev.Series.LastObservedTime.After(t) {
		t = ev.Series.LastObservedTime.Time
	}
	return t
}

// podProblem says what keeps a pod from running and being ready, from its
// status and latest Warning event: "ImagePullBackOff (image x not found)",
// "CrashLoopBackOff (exited with code 1, 4 restarts)", "not scheduled:
// 0/1 nodes are available: 1 Insufficient memory.". "" when nothing is
// visibly wrong.
func podProblem(pod *corev1.Pod, ev *corev1.Event) string {
	evMsg, evFull := "", ""
	if ev != nil {
		evMsg, evFull = firstLine(ev.Message), ev.Message
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			msg := firstLine(c.Message)
			if msg == "" {
				msg = evMsg
			}
			if msg == "" {
				return "not scheduled"
			}
			return "not scheduled: " + msg
		}
	}
	multi := len(pod.Spec.Containers)+len(pod.Spec.InitContainers) > 1
	prefix := func(kind, name string) string {
		if !multi {
			return ""
		}
		return kind + " " + name + ": "
	}
	type status struct {
		corev1.ContainerStatus
		init bool
	}
	var all []status
	for _, st := range pod.Status.InitContainerStatuses {
		all = append(all, status{st, true})
	}
	for _, st := range pod.Status.ContainerStatuses {
		all = append(all, status{st, false})
	}
	for _, st := range all {
		kind := "container"
		if st.init {
			kind = "init container"
		}
		switch {
		case st.State.Waiting != nil && st.State.Waiting.Reason != "PodInitializing":
			return prefix(kind, st.Name) + waitingProblem(st.ContainerStatus, evMsg, evFull)
		case st.State.Terminated != nil && st.State.Terminated.ExitCode != 0:
			return prefix(kind, st.Name) + terminated(st.State.Terminated)
		case st.init && st.State.Running != nil:
			return prefix(kind, st.Name) + "init container still running"
		case !st.init && st.State.Running != nil && !st.Ready:
			if evMsg != "" {
				return prefix(kind, st.Name) + "running but not ready: " + evMsg
			}
			return prefix(kind, st.Name) + "running but not ready"
		}
	}
	if evMsg != "" {
		return phaseOf(pod) + ": " + evMsg
	}
	return ""
}

// terminated describes a container that exited: "exited with code 137
// (OOMKilled)".
func terminated(t *corev1.ContainerStateTerminated) string {
	s := fmt.Sprintf("exited with code %d", t.ExitCode)
	if t.Reason != "" && t.Reason != "Error" && t.Reason != "Completed" {
		s += " (" + t.Reason + ")"
	}
	return s
}

// waitingProblem is a waiting container's reason with the detail a learner
// needs. evMsg is the first line of the latest Warning event, for showing;
// evFull all of it, for reading.
func waitingProblem(st corev1.ContainerStatus, evMsg, evFull string) string {
	w := st.State.Waiting
	reason := w.Reason
	if reason == "" {
		reason = "waiting"
	}
	detail := ""
	switch reason {
	case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull":
		text := strings.ToLower(w.Message + " " + evFull)
		image := st.Image
		switch {
		case reason == "InvalidImageName":
			detail = "invalid image name " + image
		case reason == "ErrImageNeverPull":
			detail = "image " + image + " is not on the node and imagePullPolicy is Never"
		case strings.Contains(text, "not found") || strings.Contains(text, "manifest unknown") ||
			strings.Contains(text, "does not exist"):
			detail = "image " + image + " not found"
		case strings.Contains(text, "unauthorized") || strings.Contains(text, "denied") ||
			strings.Contains(text, "authentication required"):
			detail = "image " + image + ": pull access denied"
		default:
			detail = "image " + image + " could not be pulled"
		}
	case "CrashLoopBackOff":
		if t := st.LastTerminationState.Terminated; t != nil {
			detail = terminated(t) + ", " + plural(int(st.RestartCount), "restart", "restarts")
		} else {
			detail = plural(int(st.RestartCount), "restart", "restarts")
		}
	default:
		detail = firstLine(w.Message)
		if detail == "" {
			detail = evMsg
		}
	}
	if detail == "" {
		return reason
	}
	return reason + " (" + detail + ")"
}
