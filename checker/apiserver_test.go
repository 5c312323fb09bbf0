package checker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// proxyReply is what a service behind the API server's proxy answers.
type proxyReply struct {
	status int
	body   string
}

// fakeAPIServer is a real HTTP server speaking enough of the Kubernetes API
// for the real clients: discovery, GET and LIST (with label selectors) of
// the fixture's objects, and the service proxy. A write fails the test:
// the checker must refuse it before it leaves the process.
type fakeAPIServer struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	objects map[string][]*unstructured.Unstructured // collection path -> objects
	proxy   map[string]proxyReply                   // path[?query] -> reply
	seen    []string
}

func newFakeAPIServer(t *testing.T, fixtureFile string, proxy map[string]proxyReply) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{t: t, objects: map[string][]*unstructured.Unstructured{}, proxy: proxy}
	plurals := map[schema.GroupVersionKind]resourceInfo{}
	for _, l := range testResources {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		for _, r := range l.APIResources {
			plurals[gv.WithKind(r.Kind)] = resourceInfo{r.Name, r.Namespaced}
		}
	}
	for _, doc := range readDocs(t, fixtureFile) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(doc); err != nil {
			t.Fatal(err)
		}
		ri, ok := plurals[u.GroupVersionKind()]
		if !ok {
			continue
		}
		coll := collectionPath(u.GroupVersionKind().GroupVersion(), ri, u.GetNamespace())
		f.objects[coll] = append(f.objects[coll], u)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

type resourceInfo struct {
	plural     string
	namespaced bool
}

// gvPath is where a group version is served: /api/v1, /apis/apps/v1.
func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "/api/" + gv.Version
	}
	return "/apis/" + gv.String()
}

func collectionPath(gv schema.GroupVersion, ri resourceInfo, ns string) string {
	p := gvPath(gv)
	if ri.namespaced {
		p += "/namespaces/" + ns
	}
	return p + "/" + ri.plural
}

func (f *fakeAPIServer) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		f.t.Errorf("encode reply: %v", err)
	}
}

func (f *fakeAPIServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		f.t.Errorf("the fake API server received a write: %s %s", r.Method, r.URL.Path)
		http.Error(w, "writes are not allowed", http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	f.seen = append(f.seen, r.URL.RequestURI())
	f.mu.Unlock()
	p := r.URL.Path
	if strings.Contains(p, "/proxy") {
		key := p
		if r.URL.RawQuery != "" {
			key += "?" + r.URL.RawQuery
		}
		rep, ok := f.proxy[key]
		if !ok {
			f.t.Errorf("unexpected proxy request %s", key)
			http.NotFound(w, r)
			return
		}
		if strings.HasPrefix(rep.body, "{") {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "text/plain")
		}
		w.WriteHeader(rep.status)
		fmt.Fprint(w, rep.body)
		return
	}
	switch p {
	case "/api":
		f.reply(w, 200, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
		return
	case "/apis":
		list := metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
		for _, l := range testResources {
			gv, _ := schema.ParseGroupVersion(l.GroupVersion)
			if gv.Group == "" {
				continue
			}
			v := metav1.GroupVersionForDiscovery{GroupVersion: l.GroupVersion, Version: gv.Version}
			list.Groups = append(list.Groups, metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v})
		}
		f.reply(w, 200, list)
		return
	}
	for _, l := range testResources {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		if p == gvPath(gv) {
			out := *l
			out.Kind, out.APIVersion = "APIResourceList", "v1"
			f.reply(w, 200, out)
			return
		}
	}
	if items, ok := f.objects[p]; ok || f.isCollection(p) {
		sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
		if err != nil {
			f.reply(w, 400, metav1.Status{Status: "Failure", Message: err.Error()})
			return
		}
		list := map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": "1"}}
		var out []any
		for _, u := range items {
			if sel.Matches(labels.Set(u.GetLabels())) {
				out = append(out, u.Object)
			}
		}
		if out == nil {
			out = []any{}
		}
		list["items"] = out
		f.reply(w, 200, list)
		return
	}
	i := strings.LastIndex(p, "/")
	for _, u := range f.objects[p[:i]] {
		if u.GetName() == p[i+1:] {
			f.reply(w, 200, u.Object)
			return
		}
	}
	f.reply(w, 404, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Reason: metav1.StatusReasonNotFound, Code: 404, Message: fmt.Sprintf("%s not found", p[i+1:])})
}

// isCollection says whether p names a known collection (empty or not).
func (f *fakeAPIServer) isCollection(p string) bool {
	for _, l := range testResources {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		for _, r := range l.APIResources {
			if !r.Namespaced {
				if p == gvPath(gv)+"/"+r.Name {
					return true
				}
				continue
			}
			rest, ok := strings.CutPrefix(p, gvPath(gv)+"/namespaces/")
			if ns, plural, ok2 := strings.Cut(rest, "/"); ok && ok2 && ns != "" && plural == r.Name {
				return true
			}
		}
	}
	return false
}
