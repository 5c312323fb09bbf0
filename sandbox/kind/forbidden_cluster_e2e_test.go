//go:build e2e

package kind_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/sandboxtest"
)

// TestE2EForbiddenCluster: from the learner's terminal (their kubeconfig,
// in their workstation) every way onto the node or around kubelab's
// policy tried here is refused, each with the refusal text expected,
// while what the lessons do still works.
//
//	go test -tags e2e -count=1 -run TestE2EForbiddenCluster -v ./sandbox/kind/
func TestE2EForbiddenCluster(t *testing.T) {
	requireDocker(t)
	p := newProvider(t)
	id := sandboxtest.NewID("kl-forbid")
	t.Cleanup(func() { _ = p.Delete(context.Background(), id) })
	sb, err := p.Create(t.Context(), id, sandbox.Spec{Owner: "eve", Kind: sandbox.KindKubernetes, Images: []string{helloImage}}, progressLogger(t, time.Now()))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	node := id + "-control-plane"
	// The API server type-checks each policy's CEL against the resources
	// it matches, and reports what does not check in its status.
	warnings := run(t, "docker", "exec", node, "kubectl", "--kubeconfig=/etc/kubernetes/admin.conf",
		"get", "validatingadmissionpolicies", "-o", `jsonpath={range .items[*]}{.metadata.name}{" "}{.status.typeChecking.expressionWarnings}{"\n"}{end}`)
	t.Logf("type checking of kubelab's admission policies:\n%s", warnings)
	if strings.Contains(warnings, "warning") {
		t.Errorf("the API server found type errors in kubelab's admission policies:\n%s", warnings)
	}

	// Controls: the lessons' everyday work, as the learner.
	controls := []struct{ what, script, want string }{
		{"the terminal's credentials are the learner's", "kubectl auth whoami -o jsonpath='{.status.userInfo.username} {.status.userInfo.groups}'", "kubelab-learner [\"kubelab:learners\""},
		{"get nodes", "kubectl get nodes -o name", "node/" + node},
		{"read kube-system pods", "kubectl get pods -n kube-system -l component=kube-apiserver -o name", "pod/kube-apiserver-" + node},
		{"read kube-node-lease leases", "kubectl get leases -n kube-node-lease -o name", "lease.coordination.k8s.io/" + node},
		{"create a namespace", "kubectl create namespace lab", "namespace/lab created"},
		{"label a namespace", "kubectl label namespace lab team=ml", "namespace/lab labeled"},
		{"create a deployment", "kubectl -n lab create deployment web --image=" + helloImage + " --port=8080 && kubectl -n lab rollout status deployment/web --timeout=180s", "successfully rolled out"},
		{"exec into own pod", "kubectl -n lab exec deploy/web -- /hello --version", "v1"},
		{"port-forward to own pod", "kubectl -n lab port-forward deploy/web 18080:8080 >/tmp/pf.log 2>&1 & pf=$!; for i in $(seq 1 20); do out=$(curl -s -m 2 http://127.0.0.1:18080/) && break; sleep 0.5; done; kill $pf; echo \"$out\"", "hello from v1"},
		{"a pod dropping capabilities, RuntimeDefault seccomp", podScript("lab", "tidy", `"securityContext":{"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"c","image":"`+helloImage+`","securityContext":{"allowPrivilegeEscalation":true,"capabilities":{"drop":["ALL"],"add":["NET_BIND_SERVICE"]}}}]`), "pod/tidy created"},
		{"a role and binding within the learner's rights", "kubectl -n lab create role reader --verb=get,list --resource=pods && kubectl -n lab create rolebinding reader --role=reader --serviceaccount=lab:default", "rolebinding.rbac.authorization.k8s.io/reader created"},
		{"a cluster role within the learner's rights", "kubectl create clusterrole eve-reader --verb=get,list --resource=pods", "clusterrole.rbac.authorization.k8s.io/eve-reader created"},
		{"a persistent volume claim on the default storage class", "kubectl -n lab apply -f - <<'EOF'\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 10Mi}}\nEOF", "persistentvolumeclaim/data created"},
	}
	t.Logf("%-58s | %s", "control (must work)", "result")
	for _, c := range controls {
		r := exec1(t, sb, c.script)
		out := strings.TrimSpace(string(r.Stdout) + string(r.Stderr))
		ok := r.ExitCode == 0 && strings.Contains(out, c.want)
		t.Logf("%-58s | %v", c.what, map[bool]string{true: "works", false: "FAILED: " + out}[ok])
		if !ok {
			t.Errorf("control %q: exit %d, want output with %q: %s", c.what, r.ExitCode, c.want, out)
		}
	}
	// Seccomp: the kubelet defaults to RuntimeDefault (seccompDefault).
	// The kubelet defaults to RuntimeDefault (seccompDefault): deployment
	// web sets no profile, and its container runs under a seccomp filter
	// (mode 2), seen from the node.
	cid := strings.TrimSpace(string(exec1(t, sb, "kubectl -n lab get pods -l app=web -o jsonpath='{.items[0].status.containerStatuses[0].containerID}'").Stdout))
	cid = strings.TrimPrefix(cid, "containerd://")
	if cid == "" {
		t.Fatal("deployment web's container has no ID")
	}
	seccomp := strings.TrimSpace(run(t, "docker", "exec", node, "sh", "-c",
		`for p in $(grep -l "$1" /proc/[0-9]*/cgroup | cut -d/ -f3); do sed -n 's/^Seccomp:[[:space:]]*//p' /proc/$p/status; done | sort -u`, "sh", cid))
	t.Logf("seccomp mode of deployment web's container (no profile in its pod), seen on the node: %q", seccomp)
	if seccomp != "2" {
		t.Errorf("deployment web's container runs with seccomp mode %q, want 2 (a filter: RuntimeDefault by the kubelet's default)", seccomp)
	}

	proxyPod := strings.TrimSpace(string(exec1(t, sb, "kubectl -n kube-system get pods -l k8s-app=kube-proxy -o jsonpath='{.items[0].metadata.name}'").Stdout))
	dnsPod := strings.TrimSpace(string(exec1(t, sb, "kubectl -n kube-system get pods -l k8s-app=kube-dns -o jsonpath='{.items[0].metadata.name}'").Stdout))
	if proxyPod == "" || dnsPod == "" {
		t.Fatalf("kube-system has no kube-proxy (%q) or CoreDNS (%q) pod to try", proxyPod, dnsPod)
	}

	const (
		privileged   = "kubelab: privileged containers are refused"
		hostNS       = "kubelab: pods in the node's namespaces (hostNetwork, hostPID, hostIPC) are refused"
		hostPath     = "kubelab: hostPath volumes are refused"
		caps         = "kubelab: adding capabilities beyond Docker's default set is refused"
		systemNS     = "kubelab: learners may read the system namespace kube-system but not change it"
		notHeld      = "is attempting to grant RBAC permissions not currently held"
		nodeVolume   = "kubelab: persistent volumes on the node's own disk (hostPath, local)"
		cannot       = "cannot "
		protectLabel = "kubelab: learners may not set, change or remove the namespace label "
	)
	forbidden := []struct{ what, script, want string }{
		{"privileged pod", podScript("lab", "priv", `"containers":[{"name":"c","image":"`+helloImage+`","securityContext":{"privileged":true}}]`), privileged},
		{"privileged init container", podScript("lab", "privinit", `"initContainers":[{"name":"i","image":"`+helloImage+`","securityContext":{"privileged":true}}],"containers":[{"name":"c","image":"`+helloImage+`"}]`), privileged},
		{"hostPath pod (the node's /)", podScript("lab", "hostpath", `"containers":[{"name":"c","image":"`+helloImage+`","volumeMounts":[{"name":"root","mountPath":"/host"}]}],"volumes":[{"name":"root","hostPath":{"path":"/"}}]`), hostPath},
		{"hostNetwork pod", podScript("lab", "hostnet", `"hostNetwork":true,"containers":[{"name":"c","image":"`+helloImage+`"}]`), hostNS},
		{"hostPID pod", podScript("lab", "hostpid", `"hostPID":true,"containers":[{"name":"c","image":"`+helloImage+`"}]`), hostNS},
		{"hostIPC pod", podScript("lab", "hostipc", `"hostIPC":true,"containers":[{"name":"c","image":"`+helloImage+`"}]`), hostNS},
		{"pod adding SYS_ADMIN", podScript("lab", "sysadmin", `"containers":[{"name":"c","image":"`+helloImage+`","securityContext":{"capabilities":{"add":["SYS_ADMIN"]}}}]`), caps},
		{"pod adding CAP_SYS_PTRACE", podScript("lab", "ptrace", `"containers":[{"name":"c","image":"`+helloImage+`","securityContext":{"capabilities":{"add":["CAP_SYS_PTRACE"]}}}]`), caps},
		{"pod with seccomp Unconfined", podScript("lab", "unconfined", `"securityContext":{"seccompProfile":{"type":"Unconfined"}},"containers":[{"name":"c","image":"`+helloImage+`"}]`), "kubelab: seccomp profile Unconfined is refused"},
		{"pod with hostPort", podScript("lab", "hostport", `"containers":[{"name":"c","image":"`+helloImage+`","ports":[{"containerPort":8080,"hostPort":80}]}]`), "kubelab: hostPort is refused"},
		{"pod with an unsafe sysctl", podScript("lab", "sysctl", `"securityContext":{"sysctls":[{"name":"kernel.msgmax","value":"65536"}]},"containers":[{"name":"c","image":"`+helloImage+`"}]`), "kubelab: unsafe sysctls are refused"},
		{"deployment of privileged pods (refused to its controller)", "kubectl -n lab create deployment privdep --image=" + helloImage + " --dry-run=client -o json | jq '.spec.template.spec.containers[0].securityContext={privileged:true}' | kubectl apply -f - >/dev/null && for i in $(seq 1 60); do m=$(kubectl -n lab get rs -l app=privdep -o jsonpath='{.items[0].status.conditions[0].message}'); [ -n \"$m\" ] && { echo \"$m\"; exit 1; }; sleep 1; done; kubectl -n lab get pods -l app=privdep", privileged},
		{"kubectl debug node (sysadmin: privileged host pod)", "kubectl debug node/" + node + " --profile=sysadmin --image=" + helloImage + " -- /hello --version", privileged},
		{"kubectl debug node (legacy: host namespaces and /)", "kubectl debug node/" + node + " --profile=legacy --image=" + helloImage + " -- /hello --version", "kubelab: "},
		{"privileged ephemeral container (kubectl debug pod)", "kubectl -n lab debug tidy --profile=sysadmin --image=" + helloImage + " -- /hello --version", privileged},
		{"exec into kube-proxy (kube-system)", "kubectl -n kube-system exec " + proxyPod + " -- true", systemNS},
		{"attach to kube-proxy (kube-system)", "timeout 10 kubectl -n kube-system attach " + proxyPod + "; rc=$?; [ $rc = 124 ] && { echo attached; exit 0; }; exit $rc", systemNS},
		{"port-forward to CoreDNS (kube-system)", "timeout 20 kubectl -n kube-system port-forward pod/" + dnsPod + " 10053:53 2>&1 & sleep 3; if nc -z -w 3 127.0.0.1 10053; then echo forwarded; kill %1; exit 0; fi; wait; exit 1", systemNS},
		{"proxy to a kube-system service", "kubectl get --raw /api/v1/namespaces/kube-system/services/kube-dns:dns-tcp/proxy/", systemNS},
		{"create a pod in kube-system", podScript("kube-system", "intruder", `"containers":[{"name":"c","image":"`+helloImage+`"}]`), systemNS},
		{"delete kube-proxy's daemonset", "kubectl -n kube-system delete daemonset kube-proxy", systemNS},
		{"edit kube-system's coredns configmap", "kubectl -n kube-system patch configmap coredns -p '{\"data\":{\"x\":\"y\"}}'", systemNS},
		{"token for a kube-system service account", "kubectl -n kube-system create token kube-proxy", systemNS},
		{"label the kube-system namespace", "kubectl label namespace kube-system owner=eve", systemNS},
		{"exempt a namespace (label kubelab.io/system=true)", "kubectl label namespace lab kubelab.io/system=true", protectLabel + "kubelab.io/system"},
		{"create an exempt namespace", "kubectl create -f - <<'EOF'\napiVersion: v1\nkind: Namespace\nmetadata: {name: sneaky, labels: {kubelab.io/system: \"true\"}}\nEOF", protectLabel + "kubelab.io/system"},
		{"create namespace local-path-storage (exempt by name)", "kubectl create namespace local-path-storage", "kubelab: learners may read the system namespace local-path-storage"},
		{"pod security label privileged", "kubectl label namespace lab pod-security.kubernetes.io/enforce=privileged", protectLabel + "pod-security.kubernetes.io/enforce"},
		{"ClusterRoleBinding to cluster-admin", "kubectl create clusterrolebinding eve-admin --clusterrole=cluster-admin --user=kubelab-learner", notHeld},
		{"RoleBinding to cluster-admin in own namespace", "kubectl -n lab create rolebinding eve-admin --clusterrole=cluster-admin --user=kubelab-learner", notHeld},
		{"ClusterRole granting impersonate", "kubectl create clusterrole eve-power --verb=impersonate --resource=users", notHeld},
		{"widen the learner's own ClusterRole", "kubectl patch clusterrole kubelab:learner --type=json -p '[{\"op\":\"add\",\"path\":\"/rules/-\",\"value\":{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"verbs\":[\"get\"]}}]'", "kubelab: learners may not change or delete the cluster's own clusterroles kubelab:learner"},
		{"delete the learner's ClusterRoleBinding", "kubectl delete clusterrolebinding kubelab:learner", "kubelab: learners may not change or delete the cluster's own clusterrolebindings kubelab:learner"},
		{"delete a system ClusterRoleBinding", "kubectl delete clusterrolebinding system:kube-scheduler", "kubelab: learners may not change or delete the cluster's own clusterrolebindings system:kube-scheduler"},
		{"create a ValidatingAdmissionPolicy", "kubectl apply -f - <<'EOF'\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: eve}\nspec:\n  matchConstraints:\n    resourceRules: [{apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [pods]}]\n  validations: [{expression: \"true\"}]\nEOF", cannot + `create resource "validatingadmissionpolicies"`},
		{"delete kubelab's pod policy", "kubectl delete validatingadmissionpolicy kubelab-pod-security", cannot + `delete resource "validatingadmissionpolicies"`},
		{"delete kubelab's pod policy binding", "kubectl delete validatingadmissionpolicybinding kubelab-pod-security", cannot + `delete resource "validatingadmissionpolicybindings"`},
		{"create a mutating webhook", "kubectl apply -f - <<'EOF'\napiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {name: eve}\nwebhooks: []\nEOF", cannot + `create resource "mutatingwebhookconfigurations"`},
		{"impersonate admin (--as=admin)", "kubectl get pods --as=admin", cannot + `impersonate resource "users"`},
		{"impersonate system:masters (--as-group)", "kubectl get pods --as=kubelab-learner --as-group=system:masters", cannot + `impersonate resource "users"`},
		{"kubelet API through nodes/proxy", "kubectl get --raw /api/v1/nodes/" + node + "/proxy/pods", cannot + `get resource "nodes/proxy"`},
		{"hostPath persistent volume", pvScript("eve-host", `hostPath: {path: /}`), nodeVolume},
		{"local persistent volume", pvScript("eve-local", "local: {path: /}\n  nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: ["+node+"]}]}]}}"), nodeVolume},
		{"approve a CSR", csrScript(t), cannot + `update resource "certificatesigningrequests/approval"`},
		{"cordon the node", "kubectl cordon " + node + "; [ \"$(kubectl get node " + node + " -o jsonpath='{.spec.unschedulable}')\" = true ]", cannot + `patch resource "nodes"`},
		{"kubeadm's well-known bootstrap token", "kubectl --kubeconfig=/dev/null --server=https://" + node + ":6443 --insecure-skip-tls-verify --token=abcdef.0123456789abcdef get nodes", "Unauthorized"},
	}
	t.Logf("%-58s | %-8s | %s", "forbidden action (from the learner's terminal)", "outcome", "what the learner saw")
	refused, allowed := 0, 0
	for _, f := range forbidden {
		r := exec1(t, sb, f.script)
		out := strings.TrimSpace(string(r.Stdout) + string(r.Stderr))
		outcome := "refused"
		switch {
		case r.ExitCode == 0:
			outcome = "ALLOWED"
			allowed++
			t.Errorf("%s was allowed: %s", f.what, out)
		case !strings.Contains(out, f.want):
			outcome = "OTHER"
			t.Errorf("%s failed, but not with %q: %s", f.what, f.want, out)
		default:
			refused++
		}
		t.Logf("%-58s | %-8s | %s", f.what, outcome, excerpt(out, f.want))
	}
	t.Logf("forbidden actions: %d tried, %d refused, %d allowed", len(forbidden), refused, allowed)
	if allowed > 0 {
		t.Fatalf("%d forbidden actions were allowed", allowed)
	}
}

// podScript creates, as the learner, pod name in namespace ns with spec
// (the JSON members of its spec).
func podScript(ns, name, spec string) string {
	return fmt.Sprintf(`kubectl -n %s create -f - <<'EOF'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q},"spec":{%s}}
EOF`, ns, name, spec)
}

// pvScript creates, as the learner, a 1 GiB persistent volume name whose
// source is the YAML source.
func pvScript(name, source string) string {
	return fmt.Sprintf(`kubectl create -f - <<'EOF'
apiVersion: v1
kind: PersistentVolume
metadata: {name: %s}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  %s
EOF`, name, source)
}

// csrScript creates, as the learner, a certificate signing request for a
// client certificate (which the learner may do; the API server itself
// refuses one for system:masters), then approves it (which the learner
// may not).
func csrScript(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "eve-admin", Organization: []string{"eve:admins"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	req := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	return `kubectl create -f - <<'EOF' >/dev/null || exit 2
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {name: eve-admin}
spec:
  request: ` + req + `
  signerName: kubernetes.io/kube-apiserver-client
  usages: [client auth]
EOF
kubectl certificate approve eve-admin`
}

// excerpt is the line of out that holds want, else out's first line, cut
// to fit a table.
func excerpt(out, want string) string {
	line := strings.SplitN(out, "\n", 2)[0]
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, want) {
			line = l
			break
		}
	}
	if i := strings.Index(line, "kubelab: "); i > 0 {
		line = line[i:]
	}
	const keep = 150
	if len(line) > keep {
		line = line[:keep] + "..."
	}
	return line
}
