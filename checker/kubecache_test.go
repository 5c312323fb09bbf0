package checker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/flowcontrol"
)

// cachedEvaluator polls fast and gets its clients from c.
func cachedEvaluator(c *kubeCache) *evaluator {
	return &evaluator{poll: 5 * time.Millisecond, attemptMax: 5 * time.Second, kube: c.clients}
}

// threeKubeChecks is a step's worth of kube checks that pass against
// testdata/cluster.yaml.
func threeKubeChecks(t testing.TB) []Check {
	t.Helper()
	var cs []Check
	for i, block := range []string{
		"kube: {resource: deployments/web, expect: [{path: .status.readyReplicas, equals: 2}]}",
		"kube: {resource: svc/web, expect: [{path: '.spec.ports[0].port', equals: 80}]}",
		"kube: {resource: configmaps/settings, expect: [{path: .data.mode, equals: prod}]}",
	} {
		spec, err := Compile("kube", []byte(block))
		if err != nil {
			t.Fatalf("Compile: %v\n%s", err, block)
		}
		cs = append(cs, Check{ID: fmt.Sprint(i), Spec: spec.(*Spec)})
	}
	return cs
}

func wantAllPassed(t testing.TB, rs []Result) {
	t.Helper()
	for _, r := range rs {
		if !r.Passed {
			t.Fatalf("check %s failed: %s (%v)", r.ID, r.Message, r.Err)
		}
	}
}

// A second evaluation against the same cluster reads no discovery: the
// clients and their discovery cache are kept, even when the target hands
// out a new config with the same contents each time.
func TestKubeCacheReadsDiscoveryOnce(t *testing.T) {
	t.Parallel()
	api := newFakeAPIServer(t, "testdata/cluster.yaml", nil)
	cache := newKubeCache(newKubeClients, clientIdle)
	e := cachedEvaluator(cache)
	cs := threeKubeChecks(t)

	wantAllPassed(t, e.evaluateAll(t.Context(), &fakeTarget{kubeConfig: &rest.Config{Host: api.srv.URL}}, cs))
	first := api.discoveryReads()
	if first == 0 {
		t.Fatal("the first evaluation read no discovery; the fake server is not counting")
	}
	// The three concurrent checks of a step read discovery once between
	// them: one full read is /api, /apis and one request per group version.
	if want := 2 + len(testResources); first != want {
		t.Errorf("the first evaluation made %d discovery requests, want %d (one read for the three checks)", first, want)
	}
	before := api.requests()
	wantAllPassed(t, e.evaluateAll(t.Context(), &fakeTarget{kubeConfig: &rest.Config{Host: api.srv.URL}}, cs))
	if n := api.discoveryReads(); n != first {
		t.Errorf("the second evaluation made %d discovery requests, want none", n-first)
	}
	if n := api.requests() - before; n != len(cs) {
		t.Errorf("the second evaluation made %d requests, want %d (one GET per check)", n, len(cs))
	}
	if n := cache.len(); n != 1 {
		t.Errorf("the cache holds %d clusters, want 1", n)
	}
}

// A type the cluster gains after discovery was cached (a CRD the learner
// installs) is found by the next evaluation, which re-reads discovery once
// before it reports the type missing.
func TestKubeCacheFindsATypeInstalledLater(t *testing.T) {
	t.Parallel()
	api := newFakeAPIServer(t, "testdata/cluster.yaml", nil)
	api.setResources(testResources[:2]) // no kubeflow.org yet
	e := cachedEvaluator(newKubeCache(newKubeClients, clientIdle))
	target := &fakeTarget{kubeConfig: &rest.Config{Host: api.srv.URL}}
	nb := Check{ID: "nb", Spec: mustCompile(t, "kube", "kube: {resource: notebooks/my-nb}")}

	wantAllPassed(t, e.evaluateAll(t.Context(), target, threeKubeChecks(t)))
	oneRead := api.discoveryReads()

	got := e.evaluate(t.Context(), target, nb)
	wantResult(t, got, false, `the cluster has no resource type "notebooks" (is its CRD installed?)`)
	if n := api.discoveryReads() - oneRead; n != oneRead {
		t.Errorf("a missing type re-read discovery with %d requests, want one full read (%d)", n, oneRead)
	}

	api.setResources(testResources) // the learner installs the CRD
	got = e.evaluate(t.Context(), target, nb)
	wantResult(t, got, true, "notebook/my-nb exists in namespace default")

	// Found types do not re-read discovery.
	reads := api.discoveryReads()
	got = e.evaluate(t.Context(), target, nb)
	wantResult(t, got, true, "notebook/my-nb exists in namespace default")
	if n := api.discoveryReads() - reads; n != 0 {
		t.Errorf("a known type made %d discovery requests, want none", n)
	}
}

// Checks that miss a type at the same time forget discovery once between
// them, not once each.
func TestKubeCacheRefreshOnceForConcurrentMisses(t *testing.T) {
	t.Parallel()
	var resets atomic.Int32
	kc := &kubeClients{reset: func() { resets.Add(1) }}
	seen := kc.discoveryVersion()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if !kc.refresh(seen) {
				t.Error("refresh reported no newer discovery")
			}
		})
	}
	wg.Wait()
	if n := resets.Load(); n != 1 {
		t.Errorf("discovery was forgotten %d times, want 1", n)
	}
	if !kc.refresh(kc.discoveryVersion()) || resets.Load() != 2 {
		t.Errorf("a later miss did not forget discovery again (%d resets)", resets.Load())
	}
	if (&kubeClients{}).refresh(0) {
		t.Error("clients without a reset hook reported newer discovery")
	}
}

// Configs for the same host with different credentials never share
// clients: each request carries its own config's credentials.
func TestKubeCacheKeepsIdentitiesApart(t *testing.T) {
	t.Parallel()
	api := newFakeAPIServer(t, "testdata/cluster.yaml", nil)
	cache := newKubeCache(newKubeClients, clientIdle)
	e := cachedEvaluator(cache)
	cs := threeKubeChecks(t)
	for _, token := range []string{"alice", "bob", "alice"} {
		api.mu.Lock()
		from := len(api.auth)
		api.mu.Unlock()
		wantAllPassed(t, e.evaluateAll(t.Context(), &fakeTarget{kubeConfig: &rest.Config{Host: api.srv.URL, BearerToken: token}}, cs))
		api.mu.Lock()
		for _, got := range api.auth[from:] {
			if got != "Bearer "+token {
				t.Errorf("evaluating as %s sent Authorization %q", token, got)
			}
		}
		api.mu.Unlock()
	}
	if n := cache.len(); n != 2 {
		t.Errorf("the cache holds %d entries for two identities, want 2", n)
	}
}

func TestClusterKey(t *testing.T) {
	t.Parallel()
	base := func() *rest.Config {
		return &rest.Config{Host: "https://127.0.0.1:6443", TLSClientConfig: rest.TLSClientConfig{
			CertData: []byte("cert"), KeyData: []byte("key"), CAData: []byte("ca")}}
	}
	key, ok := clusterKey(base())
	if !ok {
		t.Fatal("a kind config (host, client certificate, CA) is not cacheable")
	}
	if !strings.HasPrefix(key, "https://127.0.0.1:6443 ") || strings.Contains(key, "cert") || strings.Contains(key, "key") {
		t.Errorf("key %q: want the host, then a hash with no credential in it", key)
	}
	if again, _ := clusterKey(base()); again != key {
		t.Error("two equal configs have different keys")
	}
	differ := map[string]func(*rest.Config){
		"host":         func(c *rest.Config) { c.Host = "https://127.0.0.1:6444" },
		"client cert":  func(c *rest.Config) { c.CertData = []byte("cert2") },
		"client key":   func(c *rest.Config) { c.KeyData = []byte("key2") },
		"CA":           func(c *rest.Config) { c.CAData = []byte("ca2") },
		"token":        func(c *rest.Config) { c.BearerToken = "t" },
		"token file":   func(c *rest.Config) { c.BearerTokenFile = "/run/token" },
		"basic auth":   func(c *rest.Config) { c.Username, c.Password = "u", "p" },
		"impersonate":  func(c *rest.Config) { c.Impersonate.UserName = "learner" },
		"groups":       func(c *rest.Config) { c.Impersonate.Groups = []string{"system:masters"} },
		"insecure":     func(c *rest.Config) { c.Insecure = true },
		"server name":  func(c *rest.Config) { c.ServerName = "kind" },
		"cert file":    func(c *rest.Config) { c.CertFile = "/etc/cert" },
		"field bounds": func(c *rest.Config) { c.CertData, c.KeyData = []byte("cer"), []byte("tkey") },
	}
	seen := map[string]string{key: "base"}
	for name, mod := range differ {
		c := base()
		mod(c)
		k, ok := clusterKey(c)
		if !ok {
			t.Errorf("%s: not cacheable", name)
			continue
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%s: same key as %s", name, other)
		}
		seen[k] = name
	}
	uncacheable := map[string]func(*rest.Config){
		"exec plugin":    func(c *rest.Config) { c.ExecProvider = &clientcmdapi.ExecConfig{Command: "aws"} },
		"custom wrapper": func(c *rest.Config) { c.WrapTransport = readOnlyConfig(c).WrapTransport },
		"rate limiter":   func(c *rest.Config) { c.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter() },
	}
	for name, mod := range uncacheable {
		c := base()
		mod(c)
		if _, ok := clusterKey(c); ok {
			t.Errorf("%s: cacheable, want new clients every time", name)
		}
	}
}

// Clients nobody used for the idle time are dropped on a later call;
// clients in use stay.
func TestKubeCacheDropsIdleClients(t *testing.T) {
	t.Parallel()
	var builds atomic.Int32
	cache := newKubeCache(func(cfg *rest.Config) (*kubeClients, error) {
		builds.Add(1)
		return &kubeClients{}, nil
	}, 10*time.Minute)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cache.now = func() time.Time { return now }
	a, b := &rest.Config{Host: "https://a:6443"}, &rest.Config{Host: "https://b:6443"}
	get := func(cfg *rest.Config) *kubeClients {
		t.Helper()
		kc, err := cache.clients(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}

	a1 := get(a)
	now = now.Add(5 * time.Minute)
	get(b)
	now = now.Add(4 * time.Minute)
	if get(a) != a1 {
		t.Error("clients used 9 minutes ago were rebuilt")
	}
	now = now.Add(7 * time.Minute) // a: 7 minutes idle, b: 11
	if get(a) != a1 {
		t.Error("clients used 7 minutes ago were rebuilt")
	}
	if n := cache.len(); n != 1 {
		t.Errorf("after b was idle 11 minutes the cache holds %d clusters, want 1", n)
	}
	now = now.Add(11 * time.Minute)
	if get(a) == a1 {
		t.Error("clients idle for 11 minutes were kept")
	}
	if n := builds.Load(); n != 3 {
		t.Errorf("built clients %d times, want 3 (a, b, a again)", n)
	}
}

// Many learners at once: one build per cluster, every caller gets the
// same clients, and a config that cannot make clients is not kept.
func TestKubeCacheConcurrentUse(t *testing.T) {
	t.Parallel()
	var builds sync.Map // host -> *atomic.Int32
	cache := newKubeCache(func(cfg *rest.Config) (*kubeClients, error) {
		n, _ := builds.LoadOrStore(cfg.Host, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		if strings.Contains(cfg.Host, "broken") {
			return nil, fmt.Errorf("no clients for %s", cfg.Host)
		}
		time.Sleep(time.Millisecond) // let other callers arrive meanwhile
		return &kubeClients{}, nil
	}, clientIdle)
	const clusters, learners = 4, 16
	got := make([][]*kubeClients, clusters)
	for i := range got {
		got[i] = make([]*kubeClients, learners)
	}
	var wg sync.WaitGroup
	for i := range clusters {
		for j := range learners {
			wg.Go(func() {
				kc, err := cache.clients(&rest.Config{Host: fmt.Sprintf("https://c%d:6443", i)})
				if err != nil {
					t.Error(err)
				}
				got[i][j] = kc
				if _, err := cache.clients(&rest.Config{Host: "https://broken:6443"}); err == nil {
					t.Error("a broken config made clients")
				}
			})
		}
	}
	wg.Wait()
	for i := range clusters {
		n, _ := builds.Load(fmt.Sprintf("https://c%d:6443", i))
		if n.(*atomic.Int32).Load() != 1 {
			t.Errorf("cluster %d: built %d times, want once", i, n.(*atomic.Int32).Load())
		}
		for j := range learners {
			if got[i][j] != got[i][0] {
				t.Errorf("cluster %d: caller %d got other clients", i, j)
			}
		}
	}
	if n := cache.len(); n != clusters {
		t.Errorf("the cache holds %d entries, want %d (the broken config is not kept)", n, clusters)
	}
}

// The clients the cache hands out are the read-only ones.
func TestKubeCacheClientsAreReadOnly(t *testing.T) {
	t.Parallel()
	api := newFakeAPIServer(t, "testdata/cluster.yaml", nil)
	cache := newKubeCache(newKubeClients, clientIdle)
	for range 2 { // built, then from the cache
		kc, err := cache.clients(&rest.Config{Host: api.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		_, err = kc.typed.CoreV1().ConfigMaps("default").Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "evil"}}, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "checker is read-only: refused POST /api/v1/namespaces/default/configmaps") {
			t.Errorf("create through cached clients: got %v, want a read-only refusal", err)
		}
	}
}

// configCounter counts KubeConfig calls and fails the first fail of them.
type configCounter struct {
	fakeTarget
	calls atomic.Int32
	fail  int32
}

func (c *configCounter) KubeConfig(ctx context.Context) (*rest.Config, error) {
	if n := c.calls.Add(1); n <= c.fail {
		return nil, fmt.Errorf("kubeconfig not ready (%d)", n)
	}
	return c.fakeTarget.KubeConfig(ctx)
}

// A step asks the target for its cluster's config once, not once per
// check; an error is not kept, so a check that retries asks again.
func TestEvaluateAllAsksForTheConfigOnce(t *testing.T) {
	t.Parallel()
	api := newFakeAPIServer(t, "testdata/cluster.yaml", nil)
	e := cachedEvaluator(newKubeCache(newKubeClients, clientIdle))
	target := &configCounter{fakeTarget: fakeTarget{kubeConfig: &rest.Config{Host: api.srv.URL}}}
	wantAllPassed(t, e.evaluateAll(t.Context(), target, threeKubeChecks(t)))
	if n := target.calls.Load(); n != 1 {
		t.Errorf("a step of three kube checks asked for the config %d times, want 1", n)
	}

	flaky := &configCounter{fakeTarget: fakeTarget{kubeConfig: &rest.Config{Host: api.srv.URL}}, fail: 1}
	cs := threeKubeChecks(t)
	for i := range cs {
		cs[i].Timeout = 10 * time.Second
	}
	wantAllPassed(t, e.evaluateAll(t.Context(), flaky, cs))
	if n := flaky.calls.Load(); n != 2 {
		t.Errorf("after one failure the step asked for the config %d times, want 2", n)
	}
}
