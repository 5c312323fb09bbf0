package checker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HTTPSpec sends GET to a Service through the API server's service proxy
// and checks the status and body of the answer.
type HTTPSpec struct {
	Service   string
	Namespace string // default "default"
	Port      string // number or name; "" when the service has one port
	Scheme    string // "" (http) or "https"
	Path      string // default "/"; may carry a query
	Status    int    // 0: any 2xx
	Body      *regexp.Regexp
}

func compileHTTP(n *yaml.Node) (*HTTPSpec, error) {
	f, err := mapping(n, "http", "service", "namespace", "port", "scheme", "path", "status", "body")
	if err != nil {
		return nil, err
	}
	h := &HTTPSpec{}
	if h.Service, err = f.required("service"); err != nil {
		return nil, err
	}
	if h.Namespace, err = namespace(f); err != nil {
		return nil, err
	}
	if h.Port, err = f.str("port"); err != nil {
		return nil, err
	}
	if h.Scheme, err = f.str("scheme"); err != nil {
		return nil, err
	}
	if h.Scheme != "" && h.Scheme != "http" && h.Scheme != "https" {
		return nil, errAt(f.get("scheme"), "http.scheme must be http or https")
	}
	if h.Scheme == "http" {
		h.Scheme = ""
	}
	if h.Path, err = f.str("path"); err != nil {
		return nil, err
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if !strings.HasPrefix(h.Path, "/") {
		return nil, errAt(f.get("path"), "http.path must start with / (got %q)", h.Path)
	}
	if _, err := url.ParseRequestURI(h.Path); err != nil {
		return nil, errAt(f.get("path"), "http.path: invalid path %q", h.Path)
	}
	if code, ok, err := f.integer("status"); err != nil {
		return nil, err
	} else if ok {
		if code < 100 || code > 599 {
			return nil, errAt(f.get("status"), "http.status must be an HTTP status code like 200")
		}
		h.Status = code
	}
	if h.Body, err = f.regexp("body"); err != nil {
		return nil, err
	}
	return h, nil
}

// maxBody bounds the body read from a service.
const maxBody = 1 << 20

// proxyURI is the API server path that proxies to the service.
func (h *HTTPSpec) proxyURI(port string) string {
	name := h.Service
	if port != "" {
		name += ":" + port
	}
	if h.Scheme != "" {
		name = h.Scheme + ":" + name
	}
	return "/api/v1/namespaces/" + url.PathEscape(h.Namespace) + "/services/" + url.PathEscape(name) + "/proxy" + h.Path
}

func (s *session) http(ctx context.Context, h *HTTPSpec) outcome {
	kc, o, ok := s.kubeClients(ctx)
	if !ok {
		return o
	}
	where := " in namespace " + h.Namespace
	services := kc.typed.CoreV1().Services(h.Namespace)
	svc, err := services.Get(ctx, h.Service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		var found []string
		if l, err := services.List(ctx, metav1.ListOptions{}); err == nil {
			for _, it := range l.Items {
				found = append(found, it.Name)
			}
		}
		return fail("no service named %s%s%s", h.Service, where, foundList(found))
	}
	if err != nil {
		return kubeErr(err, "services"+where)
	}
	port, o, ok := servicePort(svc, h.Port)
	if !ok {
		return o
	}
	if kc.core == nil {
		return outcome{msg: "this check cannot be evaluated", err: fmt.Errorf("no REST client for the service proxy"), final: true}
	}
	// The REST client's own HTTP client (its transport carries the
	// credentials and refuses writes), so that any status and body of the
	// service come back as they are.
	u := kc.core.Get().RequestURI(h.proxyURI(port)).URL()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return outcome{msg: "this check cannot be evaluated", err: fmt.Errorf("proxy request %s: %w", u, err), final: true}
	}
	resp, err := kc.core.Client.Do(req)
	if err != nil {
		return kubeErr(fmt.Errorf("GET %s: %w", u, err), "the service proxy")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return kubeErr(fmt.Errorf("read %s: %w", u, err), "the service proxy")
	}
	code := resp.StatusCode
	what := "service " + h.Service
	if port != "" {
		what += " (port " + port + ")"
	}
	get := "GET " + h.Path
	if msg, ok := proxyError(body); ok {
		switch {
		case strings.Contains(msg, "no endpoints available"):
			return fail("%s has no ready endpoints: no ready pod matches its selector %s", what, selectorText(svc.Spec.Selector))
		case strings.Contains(msg, "connection refused"):
			return fail("%s: nothing listens on the target port of its pods (connection refused)", what)
		}
		return fail("could not reach %s: %s", what, clip(msg, maxLine))
	}
	if (h.Status == 0 && (code < 200 || code > 299)) || (h.Status != 0 && code != h.Status) {
		want := "a 2xx status"
		if h.Status != 0 {
			want = strconv.Itoa(h.Status)
		}
		return fail("%s answered %s with %d, expected %s", what, get, code, want)
	}
	if h.Body != nil {
		if !h.Body.Match(body) {
			if got := firstLine(string(body)); got != "" {
				return fail("%s answered %s with %d, but the body did not match %s: got %q", what, get, code, h.Body, got)
			}
			return fail("%s answered %s with %d, but the body was empty, expected a match for %s", what, get, code, h.Body)
		}
		return pass("%s answered %s with %d and a body matching %s", what, get, code, h.Body)
	}
	return pass("%s answered %s with %d", what, get, code)
}

// servicePort checks the port the spec names against the service's ports
// and returns what to put in the proxy path.
func servicePort(svc *corev1.Service, want string) (string, outcome, bool) {
	var ports []string
	for _, p := range svc.Spec.Ports {
		s := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if p.Name != "" {
			s += " " + p.Name
		}
		ports = append(ports, s)
	}
	if want == "" {
		if len(svc.Spec.Ports) > 1 {
			return "", fail("service %s has %d ports (%s); the check must name one", svc.Name, len(ports), strings.Join(ports, ", ")), false
		}
		return "", outcome{}, true
	}
	for _, p := range svc.Spec.Ports {
		if want == strconv.Itoa(int(p.Port)) || want == p.Name {
			return want, outcome{}, true
		}
	}
	if len(ports) == 0 {
		return "", fail("service %s has no ports, expected port %s", svc.Name, want), false
	}
	return "", fail("service %s has no port %s (ports: %s)", svc.Name, want, strings.Join(ports, ", ")), false
}

// proxyError recognises an error of the API server itself (a Status
// object) rather than an answer of the service.
func proxyError(body []byte) (string, bool) {
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return "", false
	}
	if st.Kind != "Status" || st.Status != metav1.StatusFailure {
		return "", false
	}
	return st.Message, true
}

// selectorText writes a service selector as app=web,tier=front.
func selectorText(sel map[string]string) string {
	if len(sel) == 0 {
		return "(none: the service has no selector)"
	}
	parts := make([]string, 0, len(sel))
	for k, v := range sel {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
