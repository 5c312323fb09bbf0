package kind

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// policyObjects decodes policyManifests strictly (an unknown field is an
// error) into typed objects.
func policyObjects(t *testing.T) []runtime.Object {
	t.Helper()
	raw, err := policyManifests()
	if err != nil {
		t.Fatal(err)
	}
	dec := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	r := utilyaml.NewYAMLReader(bufioReader(raw))
	var out []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("split the policy manifests: %v", err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("a policy manifest does not decode: %v\n%s", err, doc)
		}
		out = append(out, obj)
	}
	return out
}

func TestPolicyManifests(t *testing.T) {
	t.Parallel()
	objs := policyObjects(t)
	policies := map[string]*admissionv1.ValidatingAdmissionPolicy{}
	bindings := map[string]*admissionv1.ValidatingAdmissionPolicyBinding{}
	var kinds []string
	for _, o := range objs {
		switch o := o.(type) {
		case *admissionv1.ValidatingAdmissionPolicy:
			policies[o.Name] = o
		case *admissionv1.ValidatingAdmissionPolicyBinding:
			bindings[o.Name] = o
		}
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
	}
	for _, want := range []string{"kubelab-pod-security", "kubelab-learner-system-namespaces", "kubelab-learner-namespace-labels", "kubelab-learner-volumes", "kubelab-learner-system-rbac"} {
		if policies[want] == nil {
			t.Errorf("no ValidatingAdmissionPolicy %s among %v", want, kinds)
		}
	}
	for name, p := range policies {
		if p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionv1.Fail {
			t.Errorf("policy %s: failurePolicy %v, want Fail", name, p.Spec.FailurePolicy)
		}
		if len(p.Spec.Validations) == 0 {
			t.Errorf("policy %s validates nothing", name)
		}
		for i, v := range p.Spec.Validations {
			msg := v.Message
			if v.MessageExpression != "" {
				msg = strings.Trim(v.MessageExpression, "'")
			}
			if !strings.HasPrefix(msg, "kubelab: ") {
				t.Errorf("policy %s, validation %d: the message %q does not begin with \"kubelab: \"", name, i, msg)
			}
		}
		if name != "kubelab-pod-security" && !slices.ContainsFunc(p.Spec.MatchConditions, func(m admissionv1.MatchCondition) bool {
			return strings.Contains(m.Expression, "'"+learnerKubeGroup+"' in request.userInfo.groups")
		}) {
			t.Errorf("policy %s applies to everyone, not only to the group %s", name, learnerKubeGroup)
		}
		var bound bool
		for _, b := range bindings {
			if b.Spec.PolicyName == name {
				bound = true
				if !slices.Equal(b.Spec.ValidationActions, []admissionv1.ValidationAction{admissionv1.Deny}) {
					t.Errorf("binding %s: validationActions %v, want [Deny]", b.Name, b.Spec.ValidationActions)
				}
			}
		}
		if !bound {
			t.Errorf("policy %s has no binding: it is never enforced", name)
		}
	}
	for name, b := range bindings {
		if policies[b.Spec.PolicyName] == nil {
			t.Errorf("binding %s names missing policy %q", name, b.Spec.PolicyName)
		}
	}
	ps := bindings["kubelab-pod-security"]
	if ps == nil || ps.Spec.MatchResources == nil || ps.Spec.MatchResources.NamespaceSelector == nil {
		t.Fatalf("binding kubelab-pod-security exempts no system namespace: %+v", ps)
	}
	sel := ps.Spec.MatchResources.NamespaceSelector
	if len(sel.MatchLabels) != 0 || len(sel.MatchExpressions) != 2 {
		t.Errorf("binding kubelab-pod-security: namespaceSelector %+v, want the two NotIn exemptions only", sel)
	}
}

// learnerRole returns the ClusterRole bound to the learner's group.
func learnerRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	roles := map[string]*rbacv1.ClusterRole{}
	var bound []string
	for _, o := range policyObjects(t) {
		switch o := o.(type) {
		case *rbacv1.ClusterRole:
			roles[o.Name] = o
		case *rbacv1.ClusterRoleBinding:
			if slices.ContainsFunc(o.Subjects, func(s rbacv1.Subject) bool { return s.Kind == rbacv1.GroupKind && s.Name == learnerKubeGroup }) {
				bound = append(bound, o.RoleRef.Name)
			}
		case *rbacv1.RoleBinding, *rbacv1.Role:
			t.Errorf("unexpected namespaced RBAC object %T", o)
		}
	}
	if len(bound) != 1 || roles[bound[0]] == nil {
		t.Fatalf("want one ClusterRole of ours bound to group %s, got bindings to %v", learnerKubeGroup, bound)
	}
	return roles[bound[0]]
}

// allows reports whether rules grant verb on resource (with its
// subresource, as in "pods/exec") of group.
func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			continue
		}
		if (slices.Contains(r.APIGroups, group) || slices.Contains(r.APIGroups, "*")) &&
			(slices.Contains(r.Resources, resource) || slices.Contains(r.Resources, "*")) &&
			(slices.Contains(r.Verbs, verb) || slices.Contains(r.Verbs, "*")) {
			return true
		}
	}
	return false
}

func TestLearnerRole(t *testing.T) {
	t.Parallel()
	role := learnerRole(t)
	if role.AggregationRule != nil {
		t.Errorf("the learner's role is aggregated: anything labelled for it would widen it")
	}
	for i, r := range role.Rules {
		if slices.Contains(r.APIGroups, "*") {
			t.Errorf("rule %d grants every API group, admissionregistration.k8s.io included: %+v", i, r)
		}
		if slices.Contains(r.Verbs, "*") {
			t.Errorf("rule %d grants every verb, escalate, bind and impersonate included: %+v", i, r)
		}
		if slices.Contains(r.APIGroups, "") && slices.Contains(r.Resources, "*") {
			t.Errorf("rule %d grants every core resource, nodes/proxy included: %+v", i, r)
		}
	}
	type access struct{ group, resource, verb string }
	refused := []access{
		{"admissionregistration.k8s.io", "validatingadmissionpolicies", "create"},
		{"admissionregistration.k8s.io", "validatingadmissionpolicies", "delete"},
		{"admissionregistration.k8s.io", "validatingadmissionpolicybindings", "update"},
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "create"},
		{"admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch"},
		{"admissionregistration.k8s.io", "mutatingadmissionpolicies", "create"},
		{"apiregistration.k8s.io", "apiservices", "create"},
		{"certificates.k8s.io", "certificatesigningrequests/approval", "update"},
		{"certificates.k8s.io", "certificatesigningrequests/status", "update"},
		{"certificates.k8s.io", "signers", "approve"},
		{"certificates.k8s.io", "signers", "sign"},
		{"", "nodes/proxy", "get"},
		{"", "nodes/proxy", "create"},
		{"", "nodes", "update"},
		{"", "nodes", "delete"},
		{"", "users", "impersonate"},
		{"", "groups", "impersonate"},
		{"", "serviceaccounts", "impersonate"},
		{"authentication.k8s.io", "userextras", "impersonate"},
		{"rbac.authorization.k8s.io", "clusterroles", "escalate"},
		{"rbac.authorization.k8s.io", "clusterroles", "bind"},
		{"rbac.authorization.k8s.io", "roles", "bind"},
		{"storage.k8s.io", "storageclasses", "create"},
		{"node.k8s.io", "runtimeclasses", "create"},
		{"networking.k8s.io", "servicecidrs", "create"},
		{"flowcontrol.apiserver.k8s.io", "flowschemas", "update"},
		{"", "namespaces/finalize", "update"},
	}
	for _, a := range refused {
		if allows(role.Rules, a.group, a.resource, a.verb) {
			t.Errorf("the learner may %s %s in group %q", a.verb, a.resource, a.group)
		}
	}
	// What the lessons do (lessons/content/{kubernetes,kubeflow,drills}).
	needed := []access{
		{"", "nodes", "list"},
		{"", "pods", "list"},
		{"", "pods", "create"},
		{"", "pods/log", "get"},
		{"", "pods/exec", "create"},
		{"", "pods/exec", "get"},
		{"", "pods/attach", "create"},
		{"", "pods/portforward", "create"},
		{"", "pods/ephemeralcontainers", "patch"},
		{"", "services/proxy", "get"},
		{"", "namespaces", "create"},
		{"", "namespaces", "delete"},
		{"", "namespaces", "patch"},
		{"", "configmaps", "patch"},
		{"", "secrets", "create"},
		{"", "serviceaccounts", "get"},
		{"", "persistentvolumeclaims", "create"},
		{"", "persistentvolumes", "list"},
		{"", "events", "list"},
		{"apps", "deployments", "create"},
		{"apps", "deployments/scale", "patch"},
		{"apps", "daemonsets", "list"},
		{"apps", "replicasets", "list"},
		{"batch", "jobs", "create"},
		{"batch", "cronjobs", "create"},
		{"autoscaling", "horizontalpodautoscalers", "create"},
		{"policy", "poddisruptionbudgets", "create"},
		{"networking.k8s.io", "networkpolicies", "create"},
		{"discovery.k8s.io", "endpointslices", "list"},
		{"coordination.k8s.io", "leases", "list"},
		{"storage.k8s.io", "storageclasses", "list"},
		{"apiextensions.k8s.io", "customresourcedefinitions", "create"},
		{"kubeflow.org", "pytorchjobs", "create"},
		{"serving.kserve.io", "inferenceservices", "create"},
		{"rbac.authorization.k8s.io", "rolebindings", "create"},
		{"rbac.authorization.k8s.io", "clusterroles", "create"},
		{"certificates.k8s.io", "certificatesigningrequests", "create"},
		{"admissionregistration.k8s.io", "validatingadmissionpolicies", "list"},
	}
	for _, a := range needed {
		if !allows(role.Rules, a.group, a.resource, a.verb) {
			t.Errorf("the learner may not %s %s in group %q, which the lessons need", a.verb, a.resource, a.group)
		}
	}
}

func TestSignLearnerCert(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "kubernetes")
	now := time.Now()
	cred, err := signLearnerCert(ca.cert, ca.key, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(cred.cert, cred.key); err != nil {
		t.Fatalf("the learner's key does not match the certificate: %v", err)
	}
	block, _ := pem.Decode(cred.cert)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "kubelab-learner" || !slices.Equal(c.Subject.Organization, []string{"kubelab:learners"}) {
		t.Errorf("subject %v, want CN=kubelab-learner, O=kubelab:learners", c.Subject)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || c.IsCA {
		t.Errorf("usages %v, CA %v: want client authentication only", c.ExtKeyUsage, c.IsCA)
	}
	if got := c.NotAfter.Sub(now); got < 7*24*time.Hour-time.Second || got > 7*24*time.Hour+time.Second {
		t.Errorf("valid for %v after signing, want 7 days", got)
	}
	if c.NotBefore.After(now) {
		t.Errorf("not valid before %v, after it was signed (%v)", c.NotBefore, now)
	}
	if err := checkLearnerCert(cred.cert, ca.cert); err != nil {
		t.Errorf("checkLearnerCert: %v", err)
	}
	if _, err := signLearnerCert(ca.cert, []byte("not a key"), now); err == nil {
		t.Error("signed with a CA key that does not parse")
	}
}

// stripComments drops the YAML comment lines of doc.
func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
