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
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	objects map[string][]*unstructured.Unstructured // collection key -> objects
	proxy   map[string]proxyReply                   // path[?query] -> reply
	// resources is what discovery serves, testResources unless a test
	// installs or removes a type with setResources; objects of a type it
	// does not serve are not found.
	resources []*metav1.APIResourceList
	seen      []string // request URIs
	auth      []string // Authorization header of each request
}

func newFakeAPIServer(t testing.TB, fixtureFile string, proxy map[string]proxyReply) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{t: t, objects: map[string][]*unstructured.Unstructured{}, proxy: proxy, resources: testResources}
	for _, doc := range readDocs(t, fixtureFile) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(doc); err != nil {
			t.Fatal(err)
		}
		gvk := u.GroupVersionKind()
		for _, r := range resourcesOf(testResources, gvk.GroupVersion()) {
			if r.Kind == gvk.Kind {
				key := collectionKey(gvk.GroupVersion(), r, u.GetNamespace())
				f.objects[key] = append(f.objects[key], u)
			}
		}
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// setResources changes what discovery serves, as installing or deleting a
// CRD does.
func (f *fakeAPIServer) setResources(rs []*metav1.APIResourceList) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resources = rs
}

// discoveryReads is how many discovery requests the server answered:
// /api, /apis and the group versions under them.
func (f *fakeAPIServer) discoveryReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, uri := range f.seen {
		if isDiscovery(uri) {
			n++
		}
	}
	return n
}

// requests is how many requests the server answered.
func (f *fakeAPIServer) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

// isDiscovery tells a discovery request (/api, /apis, /api/v1,
// /apis/GROUP/VERSION) from a read of objects.
func isDiscovery(uri string) bool {
	p, _, _ := strings.Cut(uri, "?")
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch parts[0] {
	case "api":
		return len(parts) <= 2
	case "apis":
		return len(parts) <= 3
	}
	return false
}

// resourcesOf is what discovery lists for gv.
func resourcesOf(lists []*metav1.APIResourceList, gv schema.GroupVersion) []metav1.APIResource {
	for _, l := range lists {
		if l.GroupVersion == gv.String() {
			return l.APIResources
		}
	}
	return nil
}

func collectionKey(gv schema.GroupVersion, r metav1.APIResource, ns string) string {
	if !r.Namespaced {
		ns = ""
	}
	return gv.String() + "|" + ns + "|" + r.Name
}

// gvPath is where a group version is served: /api/v1, /apis/apps/v1.
func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "/api/" + gv.Version
	}
	return "/apis/" + gv.String()
}

// parseObjectPath reads /api/v1/namespaces/NS/PLURAL[/NAME] and the like,
// for the types of lists.
func parseObjectPath(lists []*metav1.APIResourceList, p string) (gv schema.GroupVersion, r metav1.APIResource, ns, name string, ok bool) {
	var rest []string
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		gv, rest = schema.GroupVersion{Version: parts[1]}, parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		gv, rest = schema.GroupVersion{Group: parts[1], Version: parts[2]}, parts[3:]
	default:
		return gv, r, "", "", false
	}
	if len(rest) >= 3 && rest[0] == "namespaces" {
		ns, rest = rest[1], rest[2:]
	}
	if len(rest) == 0 || len(rest) > 2 {
		return gv, r, "", "", false
	}
	for _, res := range resourcesOf(lists, gv) {
		if res.Name == rest[0] && res.Namespaced == (ns != "") {
			if len(rest) == 2 {
				name = rest[1]
			}
			return gv, res, ns, name, true
		}
	}
	return gv, r, "", "", false
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
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	resources := f.resources
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
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		w.WriteHeader(rep.status)
		fmt.Fprint(w, rep.body)
		return
	}
	if p == "/api" {
		f.reply(w, 200, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
		return
	}
	if p == "/apis" {
		list := metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
		for _, l := range resources {
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
	for _, l := range resources {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		if p == gvPath(gv) {
			out := *l
			out.Kind, out.APIVersion = "APIResourceList", "v1"
			f.reply(w, 200, out)
			return
		}
	}
	gv, res, ns, name, ok := parseObjectPath(resources, p)
	if !ok {
		f.reply(w, 404, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Reason: metav1.StatusReasonNotFound, Code: 404, Message: "the server could not find the requested resource"})
		return
	}
	items := f.objects[collectionKey(gv, res, ns)]
	if name == "" {
		sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
		if err != nil {
			f.reply(w, 400, metav1.Status{Status: metav1.StatusFailure, Message: err.Error()})
			return
		}
		out := []any{}
		for _, u := range items {
			if sel.Matches(labels.Set(u.GetLabels())) {
				out = append(out, u.Object)
			}
		}
		f.reply(w, 200, map[string]any{"apiVersion": gv.String(), "kind": res.Kind + "List",
			"metadata": map[string]any{"resourceVersion": "1"}, "items": out})
		return
	}
	for _, u := range items {
		if u.GetName() == name {
			f.reply(w, 200, u.Object)
			return
		}
	}
	f.reply(w, 404, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Reason: metav1.StatusReasonNotFound, Code: 404, Details: &metav1.StatusDetails{Name: name, Kind: res.Name},
		Message: fmt.Sprintf("%s %q not found", res.Name, name)})
}
