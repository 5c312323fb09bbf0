package checker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// KubeSpec checks one Kubernetes object, or the objects a selector matches:
// that they exist (or not) and that JSONPath expectations hold.
type KubeSpec struct {
	Resource  string // as written: "deployments/web", "deploy/web", "pods"
	Type      string // before the slash; resolved through discovery, so CRDs and short names work
	Name      string // after the slash; "" checks a list
	Selector  string // label selector for a list; "" lists every object of Type
	Namespace string // default "default"; ignored for cluster-scoped types
	// Count is how many listed objects must meet the expectations; nil
	// means at least one, and all of them.
	Count  *Range
	Absent bool // pass when the object (or every match) is gone
	Expect []Expectation
}

const defaultNamespace = "default"

func compileKube(n *yaml.Node) (*KubeSpec, error) {
	f, err := mapping(n, "kube", "resource", "selector", "namespace", "count", "absent", "expect")
	if err != nil {
		return nil, err
	}
	k := &KubeSpec{}
	if k.Resource, err = f.required("resource"); err != nil {
		return nil, err
	}
	if k.Type, k.Name, err = splitResource(k.Resource); err != nil {
		return nil, errAt(f.get("resource"), "kube.resource: %v", err)
	}
	if k.Selector, err = selector(f, "selector"); err != nil {
		return nil, err
	}
	if k.Namespace, err = namespace(f); err != nil {
		return nil, err
	}
	if k.Count, err = f.countRange("count"); err != nil {
		return nil, err
	}
	if k.Absent, _, err = f.boolean("absent"); err != nil {
		return nil, err
	}
	if k.Expect, err = compileExpectations(f.get("expect"), "kube.expect"); err != nil {
		return nil, err
	}
	switch {
	case k.Name != "" && k.Selector != "":
		return nil, errAt(f.key("selector"), "kube.selector cannot be used with a named resource (%s)", k.Resource)
	case k.Name != "" && k.Count != nil:
		return nil, errAt(f.key("count"), "kube.count needs a list: give kube.resource without a name")
	case k.Absent && len(k.Expect) > 0:
		return nil, errAt(f.key("absent"), "kube.absent cannot be combined with kube.expect")
	case k.Absent && k.Count != nil:
		return nil, errAt(f.key("absent"), "kube.absent cannot be combined with kube.count")
	}
	return k, nil
}

// splitResource splits "type/name"; a bare type lists.
func splitResource(s string) (typ, name string, err error) {
	s = strings.TrimSpace(s)
	typ, name, _ = strings.Cut(s, "/")
	switch {
	case typ == "":
		return "", "", fmt.Errorf("want TYPE/NAME like deployments/web, got %q", s)
	case strings.Contains(name, "/") || strings.HasSuffix(s, "/"):
		return "", "", fmt.Errorf("want TYPE/NAME like deployments/web, got %q", s)
	case strings.ContainsAny(typ, " \t"):
		return "", "", fmt.Errorf("want TYPE/NAME like deployments/web, got %q", s)
	}
	return typ, name, nil
}

// selector reads and validates a label selector.
func selector(f *fields, key string) (string, error) {
	s, err := f.str(key)
	if err != nil || s == "" {
		return "", err
	}
	if _, err := labels.Parse(s); err != nil {
		return "", errAt(f.get(key), "%s: invalid label selector %q", f.join(key), s)
	}
	return s, nil
}

// namespace reads the namespace key, "default" when absent.
func namespace(f *fields) (string, error) {
	ns, err := f.str("namespace")
	if err != nil {
		return "", err
	}
	if ns == "" {
		return defaultNamespace, nil
	}
	return ns, nil
}

// kubeClients are the clients of one cluster. All of them were built from
// a read-only config, except in tests, where they are fakes. They are
// shared by every evaluation against the cluster (see kubeCache), so they
// are safe for concurrent use.
type kubeClients struct {
	typed   kubernetes.Interface
	dynamic dynamic.Interface
	mapper  meta.RESTMapper
	reset   func()           // forget discovery, after a type was not found
	core    *rest.RESTClient // core/v1 REST client, for the service proxy; nil in fakes

	mu     sync.Mutex
	resets uint64 // how many times discovery was forgotten
}

// readOnlyConfig copies cfg with a transport that refuses writes, and a
// client-side rate limit that neither discovery nor the evaluation loop
// trips over. The clients, and so the limit, are shared by every check
// against the cluster (at most 8 at once per step, each polling about once
// a second, a few requests an attempt): the limit only caps a runaway.
func readOnlyConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return readOnlyTransport{next: rt} })
	if c.QPS == 0 {
		c.QPS, c.Burst = 100, 200
	}
	if c.UserAgent == "" {
		c.UserAgent = "kubelab-checker"
	}
	return c
}

// readOnlyTransport refuses every method but GET and HEAD (lists and
// watches are GETs), before the request leaves the process.
type readOnlyTransport struct{ next http.RoundTripper }

// RoundTrip refuses writes and passes reads on.
func (t readOnlyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("checker is read-only: refused %s %s", req.Method, req.URL.Path)
	}
	return t.next.RoundTrip(req)
}

// newKubeClients builds read-only clients for cfg, over one HTTP client so
// that they share connections. Types resolve through a deferred discovery
// mapper over an in-memory discovery cache, with short names expanded, as
// kubectl does.
func newKubeClients(cfg *rest.Config) (*kubeClients, error) {
	cfg = readOnlyConfig(cfg)
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("HTTP client for %s: %w", cfg.Host, err)
	}
	typed, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	dyn, err := dynamic.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("dynamic client for %s: %w", cfg.Host, err)
	}
	mapper, reset := newMapper(typed.Discovery())
	core, ok := typed.CoreV1().RESTClient().(*rest.RESTClient)
	if !ok {
		return nil, fmt.Errorf("core/v1 client for %s is a %T, not a *rest.RESTClient", cfg.Host, typed.CoreV1().RESTClient())
	}
	return &kubeClients{
		typed:   typed,
		dynamic: dyn,
		mapper:  mapper,
		reset:   reset,
		core:    core,
	}, nil
}

// newMapper is a RESTMapper over discovery, cached in memory for as long
// as the clients live, that expands short names; reset forgets the cache.
func newMapper(disc discovery.DiscoveryInterface) (mapper meta.RESTMapper, reset func()) {
	cached := memory.NewMemCacheClient(disc)
	deferred := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	return restmapper.NewShortcutExpander(deferred, cached, nil), deferred.Reset
}

// kubeClients gets the clients of the target's cluster once per
// evaluation: from the evaluator's cache, so that discovery is read once per
// cluster, not once per check.
func (s *session) kubeClients(ctx context.Context) (*kubeClients, outcome, bool) {
	if s.kube != nil {
		return s.kube, outcome{}, true
	}
	cfg, err := s.t.KubeConfig(ctx)
	if err != nil {
		return nil, unavailable(err, "a Kubernetes cluster"), false
	}
	if cfg == nil {
		return nil, unavailable(ErrUnavailable, "a Kubernetes cluster"), false
	}
	kc, err := s.e.kube(cfg)
	if err != nil {
		o := broken(err, "could not connect to the Kubernetes cluster")
		o.final = true
		return nil, o, false
	}
	s.kube = kc
	return kc, outcome{}, true
}

// kindInfo is a resolved resource type.
type kindInfo struct {
	gvr        schema.GroupVersionResource
	kind       string // lower-case kind for messages: "deployment"
	plural     string // "deployments"
	namespaced bool
}

// where is " in namespace NS", or "" for cluster-scoped types.
func (k kindInfo) where(ns string) string {
	if !k.namespaced {
		return ""
	}
	return " in namespace " + ns
}

// resolve maps a type as a learner or author writes it (deploy,
// deployment, deployments, deployments.apps, Notebook) to a resource.
func (kc *kubeClients) resolve(typ string) (kindInfo, error) {
	full, gr := schema.ParseResourceArg(strings.ToLower(typ))
	var gvk schema.GroupVersionKind
	var err error
	if full != nil {
		gvk, err = kc.mapper.KindFor(*full)
	}
	if full == nil || err != nil {
		gvk, err = kc.mapper.KindFor(gr.WithVersion(""))
	}
	if err != nil {
		return kindInfo{}, err
	}
	m, err := kc.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return kindInfo{}, err
	}
	return kindInfo{
		gvr:        m.Resource,
		kind:       strings.ToLower(m.GroupVersionKind.Kind),
		plural:     m.Resource.Resource,
		namespaced: m.Scope.Name() == meta.RESTScopeNameNamespace,
	}, nil
}

// discoveryVersion is how many times discovery was forgotten; refresh
// takes it to forget it once more only if nobody did in between.
func (kc *kubeClients) discoveryVersion() uint64 {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	return kc.resets
}

// refresh forgets discovery, unless it was forgotten since version seen
// (checks that miss the same type at once re-read it once, not once
// each). It reports whether discovery is newer than seen, so whether
// resolving again can find more.
func (kc *kubeClients) refresh(seen uint64) bool {
	if kc.reset == nil {
		return false
	}
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if kc.resets == seen {
		kc.reset()
		kc.resets++
	}
	return true
}

// resolveType resolves typ, turning errors into outcomes. Discovery is
// cached for as long as the clients live, so a type it lacks may be a CRD
// installed since it was read: it is read again, once, before the type is
// reported missing.
func (s *session) resolveType(kc *kubeClients, typ string) (kindInfo, outcome, bool) {
	seen := kc.discoveryVersion()
	info, err := kc.resolve(typ)
	if meta.IsNoMatchError(err) && kc.refresh(seen) {
		info, err = kc.resolve(typ)
	}
	if err == nil {
		return info, outcome{}, true
	}
	if meta.IsNoMatchError(err) {
		return info, fail("the cluster has no resource type %q (is its CRD installed?)", typ), false
	}
	return info, kubeErr(err, "the cluster's resource types"), false
}

// kubeErr turns an API error that is not the learner's doing into words.
func kubeErr(err error, what string) outcome {
	switch {
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return broken(err, "the checker is not allowed to read %s", what)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return broken(err, "the Kubernetes cluster did not answer in time")
	}
	return broken(err, "could not reach the Kubernetes cluster; it may still be starting")
}

func (kc *kubeClients) resource(info kindInfo, ns string) dynamic.ResourceInterface {
	r := kc.dynamic.Resource(info.gvr)
	if info.namespaced {
		return r.Namespace(ns)
	}
	return r
}

// plural is "1 deployment" or "2 deployments".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// verb is "matches" for one, "match" for many.
func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (s *session) kubeCheck(ctx context.Context, k *KubeSpec) outcome {
	kc, o, ok := s.kubeClients(ctx)
	if !ok {
		return o
	}
	info, o, ok := s.resolveType(kc, k.Type)
	if !ok {
		return o
	}
	ri := kc.resource(info, k.Namespace)
	where := info.where(k.Namespace)
	if k.Name != "" {
		return kubeNamed(ctx, ri, info, k, where)
	}
	return kubeList(ctx, ri, info, k, where)
}

func kubeNamed(ctx context.Context, ri dynamic.ResourceInterface, info kindInfo, k *KubeSpec, where string) outcome {
	ref := info.kind + "/" + k.Name
	obj, err := ri.Get(ctx, k.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if k.Absent {
			return pass("no %s named %s%s", info.kind, k.Name, where)
		}
		return fail("no %s named %s%s%s", info.kind, k.Name, where, foundList(listNames(ctx, ri)))
	}
	if err != nil {
		return kubeErr(err, info.plural+where)
	}
	if k.Absent {
		if obj.GetDeletionTimestamp() != nil {
			return fail("%s is still being deleted%s", ref, where)
		}
		return fail("%s still exists%s", ref, where)
	}
	if len(k.Expect) == 0 {
		return pass("%s exists%s", ref, where)
	}
	ok, msg := judge(ref, obj.Object, k.Expect)
	return outcome{passed: ok, msg: msg}
}

// listNames is the names of the objects of a type, for "(found: ...)"; nil
// when they cannot be listed.
func listNames(ctx context.Context, ri dynamic.ResourceInterface) []string {
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(list.Items))
	for _, it := range list.Items {
		out = append(out, it.GetName())
	}
	return out
}

// judge tests every expectation on obj. The message lists every failure,
// or on a pass what was found.
func judge(ref string, obj map[string]any, expect []Expectation) (bool, string) {
	var passed, failed []string
	for _, x := range expect {
		ok, detail, err := x.eval(obj)
		switch {
		case err != nil:
			failed = append(failed, fmt.Sprintf("%s %s: %v", ref, x.display(), err))
		case ok:
			passed = append(passed, x.display()+" "+detail)
		default:
			failed = append(failed, ref+" "+x.display()+detail)
		}
	}
	if len(failed) > 0 {
		return false, strings.Join(failed, "; ")
	}
	return true, ref + " " + strings.Join(passed, ", ")
}

func kubeList(ctx context.Context, ri dynamic.ResourceInterface, info kindInfo, k *KubeSpec, where string) outcome {
	list, err := ri.List(ctx, metav1.ListOptions{LabelSelector: k.Selector})
	if err != nil {
		return kubeErr(err, info.plural+where)
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool { return items[i].GetName() < items[j].GetName() })
	n := len(items)
	// matched: "3 deployments match app=web in namespace default"
	matched := func(n int) string {
		subject := "no " + info.plural
		if n > 0 {
			subject = plural(n, info.kind, info.plural)
		}
		if k.Selector != "" {
			return subject + " " + verb(n, "matches", "match") + " " + k.Selector + where
		}
		return subject + " " + verb(n, "exists", "exist") + where
	}
	if k.Absent {
		if n == 0 {
			return pass("%s", matched(0))
		}
		return fail("%s (%s), expected none", matched(n), names(itemNames(items)))
	}
	expected := ""
	if k.Count != nil {
		expected = ", expected " + k.Count.String()
	}
	if len(k.Expect) == 0 {
		if (k.Count == nil && n > 0) || (k.Count != nil && k.Count.Contains(n)) {
			return pass("%s", matched(n))
		}
		return fail("%s%s", matched(n), expected)
	}
	good, firstBad := 0, ""
	for _, it := range items {
		ok, msg := judge(info.kind+"/"+it.GetName(), it.Object, k.Expect)
		if ok {
			good++
		} else if firstBad == "" {
			firstBad = msg
		}
	}
	ok := n > 0 && good == n
	if k.Count != nil {
		ok = k.Count.Contains(good)
	}
	if n == 0 {
		if ok {
			return pass("%s", matched(0))
		}
		return fail("%s%s", matched(0), expected)
	}
	what := info.plural
	if k.Selector != "" {
		what += " matching " + k.Selector
	}
	what += where
	if ok {
		return pass("%d of %d %s meet the expectations", good, n, what)
	}
	msg := fmt.Sprintf("%d of %d %s meet the expectations%s", good, n, what, expected)
	if firstBad != "" {
		msg += "; " + firstBad
	}
	return fail("%s", msg)
}

func itemNames(items []unstructured.Unstructured) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.GetName())
	}
	return out
}
