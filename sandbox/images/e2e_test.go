//go:build e2e

package images_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindlog "sigs.k8s.io/kind/pkg/log"

	"kubelab/sandbox/images"
)

// TestNodeImageRunsHello builds (or finds) the node and hello images,
// creates a kind cluster from the node image, loads kubelab/hello:v1 the way
// "kind load" does, and checks that the node is Ready, the system pods run,
// and a pod of hello answers through the API server.
func TestNodeImageRunsHello(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		t.Fatalf("the e2e tests need a Docker engine (run .ci/docker-up): docker info: %v\n%s", err, out)
	}

	t0 := time.Now()
	results, err := images.Build(ctx, images.Options{Log: newTestWriter(t)}, "node", "hello", "debian")
	if err != nil {
		t.Fatalf("build images: %v", err)
	}
	t.Logf("images ready in %s: %+v", time.Since(t0).Round(time.Second), results)

	provider := cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(kindLogger{t}))
	name := "kubelab-e2e-" + randomSuffix(t)
	t0 = time.Now()
	err = provider.Create(name,
		cluster.CreateWithNodeImage(images.NodeImage),
		cluster.CreateWithWaitForReady(3*time.Minute),
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false),
	)
	created := time.Since(t0)
	t.Cleanup(func() {
		t0 := time.Now()
		if err := provider.Delete(name, ""); err != nil {
			t.Errorf("delete cluster %s: %v", name, err)
		}
		t.Logf("cluster %s deleted in %s", name, time.Since(t0).Round(100*time.Millisecond))
	})
	if err != nil {
		t.Fatalf("create cluster %s: %v", name, err)
	}
	t.Logf("cluster %s created (control plane Ready) in %s", name, created.Round(100*time.Millisecond))

	nodes, err := provider.ListNodes(name)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes of %s: %v, %v", name, nodes, err)
	}
	hello := images.HelloImages()[0]
	loadImage(ctx, t, nodes[0], hello)
	loadImage(ctx, t, nodes[0], images.DebianImage)

	kubeconfig, err := provider.KubeConfig(name, false)
	if err != nil {
		t.Fatalf("kubeconfig of %s: %v", name, err)
	}
	rest, err := clientcmd.RESTConfigFromKubeConfig([]byte(kubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		t.Fatal(err)
	}

	node, err := client.CoreV1().Nodes().Get(ctx, nodes[0].String(), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node: %v", err)
	}
	if !ready(node.Status.Conditions) {
		t.Errorf("node %s is not Ready: %+v", node.Name, node.Status.Conditions)
	}
	if v := node.Status.NodeInfo.KubeletVersion; v != images.KubernetesVersion {
		t.Errorf("kubelet version = %s, want %s", v, images.KubernetesVersion)
	}

	t0 = time.Now()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Labels: map[string]string{"app": "hello"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "hello", Image: hello, ImagePullPolicy: corev1.PullNever,
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
		}}},
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	var body []byte
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := client.CoreV1().Pods("default").Get(ctx, "hello", metav1.GetOptions{})
		if err == nil && ready(p.Status.Conditions) {
			body, err = client.CoreV1().Pods("default").ProxyGet("http", "hello", "8080", "/", nil).DoRaw(ctx)
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod hello did not answer within 2 minutes: last error %v; pod status %+v", err, p.Status)
		}
		time.Sleep(time.Second)
	}
	if string(body) != "hello from v1\n" {
		t.Errorf("pod hello answered %q, want %q", body, "hello from v1\n")
	}
	t.Logf("pod hello answered in %s", time.Since(t0).Round(100*time.Millisecond))

	// Every system pod runs: CoreDNS on the bridge network, kube-proxy with
	// the iptables wrapper, the control plane from the preloaded images.
	deadline = time.Now().Add(2 * time.Minute)
	for {
		pods, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list kube-system pods: %v", err)
		}
		var notReady []string
		for _, p := range pods.Items {
			if !ready(p.Status.Conditions) {
				notReady = append(notReady, p.Name+" ("+string(p.Status.Phase)+")")
			}
		}
		if len(notReady) == 0 && len(pods.Items) >= 7 {
			t.Logf("%d kube-system pods Ready", len(pods.Items))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-system pods not Ready after 2 minutes: %s", strings.Join(notReady, ", "))
		}
		time.Sleep(2 * time.Second)
	}

	// A Service in front of hello, reached by name from another pod:
	// CoreDNS, kube-proxy and the pod network together.
	t0 = time.Now()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "hello"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}
	// retries: the Service's DNS record and NAT rules appear within a second or two
	// A connection alone proves nothing: where kube-proxy has not written
	// the Service's rules yet, the packet leaves the node, and a network
	// that intercepts outbound traffic (CI's does) answers it. So: until
	// hello itself answers.
	script := `for i in $(seq 30); do
  if getent hosts hello.default.svc.cluster.local; then
    reply=$( (exec 3<>/dev/tcp/hello/80 && printf 'GET / HTTP/1.0\r\nHost: hello\r\n\r\n' >&3 && timeout 5 cat <&3) 2>&1)
    case $reply in *"hello from"*) echo "$reply"; exit 0;; esac
    echo "attempt $i: $reply" | head -n 3
  fi
  sleep 1
done
echo "service hello not reachable by name"; cat /etc/resolv.conf; exit 1`
	if phase, logs := runPod(ctx, t, client, "client", nil, script); phase != corev1.PodSucceeded || !strings.Contains(logs, "hello from v1") {
		t.Errorf("client pod %s; its output:\n%s", phase, logs)
	}
	t.Logf("service hello reached by name from a pod in %s", time.Since(t0).Round(100*time.Millisecond))

	// NetworkPolicy is enforced (kubelab-netpol, the node's network agent):
	// a default-deny on hello's ingress stops every pod, then a policy that
	// lets role=client in opens it for exactly those pods.
	t0 = time.Now()
	if err := waitDaemonSet(ctx, client, "kube-system", "kubelab-netpol"); err != nil {
		t.Fatal(err)
	}
	// EXPECT=blocked: three refused attempts in a row (a policy takes a
	// moment to reach the node); otherwise the first answer.
	probe := `misses=0
for i in $(seq 30); do
  reply=$(timeout 3 bash -c 'exec 3<>/dev/tcp/hello/80 && printf "GET / HTTP/1.0\r\nHost: hello\r\n\r\n" >&3 && cat <&3' 2>&1)
  case $reply in
  *"hello from"*) misses=0; [ "$EXPECT" = blocked ] || { echo "answered"; exit 0; } ;;
  *) misses=$((misses+1)); [ "$EXPECT" = blocked ] && [ $misses -ge 3 ] && { echo "blocked"; exit 0; } ;;
  esac
  sleep 1
done
echo "neither: last reply $reply"; exit 1`
	denyAll := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-deny-all"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "hello"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	if _, err := client.NetworkingV1().NetworkPolicies("default").Create(ctx, denyAll, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create policy: %v", err)
	}
	blockedProbe := "EXPECT=blocked\n" + probe
	if phase, logs := runPod(ctx, t, client, "denied", map[string]string{"role": "client"}, blockedProbe); strings.TrimSpace(logs) != "blocked" {
		t.Errorf("with a default-deny policy on hello, a pod still got through (%s): %s", phase, logs)
	}
	allow := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-from-clients"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "hello"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
			}},
		},
	}
	if _, err := client.NetworkingV1().NetworkPolicies("default").Create(ctx, allow, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create policy: %v", err)
	}
	if phase, logs := runPod(ctx, t, client, "allowed", map[string]string{"role": "client"}, probe); strings.TrimSpace(logs) != "answered" {
		t.Errorf("a role=client pod was not let in by the allow policy (%s): %s", phase, logs)
	}
	if phase, logs := runPod(ctx, t, client, "stranger", map[string]string{"role": "stranger"}, blockedProbe); strings.TrimSpace(logs) != "blocked" {
		t.Errorf("a role=stranger pod got through the policies (%s): %s", phase, logs)
	}
	for _, name := range []string{denyAll.Name, allow.Name} {
		if err := client.NetworkingV1().NetworkPolicies("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete policy %s: %v", name, err)
		}
	}
	t.Logf("NetworkPolicy enforced (deny, allow by label, still deny others) in %s", time.Since(t0).Round(100*time.Millisecond))

	// The node survives a restart: the entrypoint runs again over the
	// state kubeadm left, and the API and the pod come back.
	t0 = time.Now()
	if out, err := exec.CommandContext(ctx, "docker", "restart", nodes[0].String()).CombinedOutput(); err != nil {
		t.Fatalf("docker restart %s: %v\n%s", nodes[0], err, out)
	}
	deadline = time.Now().Add(5 * time.Minute)
	for {
		// each call bounded: a dial to a pod address that is gone can hang
		callCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		body, err = client.CoreV1().Pods("default").ProxyGet("http", "hello", "8080", "/", nil).DoRaw(callCtx)
		cancel()
		if err == nil && string(body) == "hello from v1\n" {
			break
		}
		if time.Now().After(deadline) {
			p, perr := client.CoreV1().Pods("default").Get(ctx, "hello", metav1.GetOptions{})
			status := fmt.Sprint(perr)
			if perr == nil {
				status = fmt.Sprintf("phase %s, IP %s, conditions %+v, containers %+v", p.Status.Phase, p.Status.PodIP, p.Status.Conditions, p.Status.ContainerStatuses)
			}
			diag, _ := exec.CommandContext(ctx, "docker", "exec", nodes[0].String(), "sh", "-c",
				"ip -4 addr; crictl pods; journalctl -u kubelet --no-pager | tail -n 40").CombinedOutput()
			t.Fatalf("after a restart, pod hello did not answer within 5 minutes: %v %q\npod: %s\nnode:\n%s", err, body, status, diag)
		}
		time.Sleep(time.Second)
	}
	t.Logf("after docker restart, API and pod hello back in %s", time.Since(t0).Round(100*time.Millisecond))
}

// runPod runs script with bash in a pod of the Debian image and returns
// how the pod ended and its output.
func runPod(ctx context.Context, t *testing.T, client kubernetes.Interface, name string, labels map[string]string, script string) (corev1.PodPhase, string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "client", Image: images.DebianImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"bash", "-c", script},
			}},
		},
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
			logs, _ := client.CoreV1().Pods("default").GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
			return p.Status.Phase, string(logs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s did not finish within 2 minutes: %v", name, err)
		}
		time.Sleep(time.Second)
	}
}

// waitDaemonSet waits until every pod of a DaemonSet is ready.
func waitDaemonSet(ctx context.Context, client kubernetes.Interface, ns, name string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ds, err := client.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && ds.Status.DesiredNumberScheduled > 0 && ds.Status.NumberReady == ds.Status.DesiredNumberScheduled {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				return fmt.Errorf("daemonset %s/%s: %d of %d pods ready after 2 minutes", ns, name, ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
			}
			return fmt.Errorf("daemonset %s/%s: %w", ns, name, err)
		}
		time.Sleep(time.Second)
	}
}

// loadImage copies ref from the host's Docker into node's containerd, as
// "kind load docker-image" does.
func loadImage(ctx context.Context, t *testing.T, node nodes.Node, ref string) {
	t.Helper()
	t0 := time.Now()
	save := exec.CommandContext(ctx, "docker", "save", ref)
	archive, err := save.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := save.Start(); err != nil {
		t.Fatalf("docker save %s: %v", ref, err)
	}
	if err := nodeutils.LoadImageArchive(node, archive); err != nil {
		t.Fatalf("load %s into %s: %v", ref, node, err)
	}
	if err := save.Wait(); err != nil {
		t.Fatalf("docker save %s: %v", ref, err)
	}
	t.Logf("%s loaded in %s", ref, time.Since(t0).Round(100*time.Millisecond))
}

func ready(conds any) bool {
	switch cs := conds.(type) {
	case []corev1.NodeCondition:
		for _, c := range cs {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue
			}
		}
	case []corev1.PodCondition:
		for _, c := range cs {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionTrue
			}
		}
	}
	return false
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testWriter sends build progress to the test log, a line at a time.
type testWriter struct {
	t   *testing.T
	buf *bytes.Buffer
}

func newTestWriter(t *testing.T) testWriter { return testWriter{t, &bytes.Buffer{}} }

func (w testWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line) // keep the unfinished line
			return len(p), nil
		}
		w.t.Log(strings.TrimRight(line, "\n"))
	}
}

// kindLogger sends kind's messages to the test log.
type kindLogger struct{ t *testing.T }

var _ kindlog.Logger = kindLogger{}

func (l kindLogger) Warn(msg string)                      { l.t.Log("kind: WARN: " + msg) }
func (l kindLogger) Warnf(f string, a ...any)             { l.Warn(fmt.Sprintf(f, a...)) }
func (l kindLogger) Error(msg string)                     { l.t.Log("kind: ERROR: " + msg) }
func (l kindLogger) Errorf(f string, a ...any)            { l.Error(fmt.Sprintf(f, a...)) }
func (l kindLogger) V(v kindlog.Level) kindlog.InfoLogger { return kindInfo{l.t, v <= 0} }

type kindInfo struct {
	t       *testing.T
	enabled bool
}

func (i kindInfo) Info(msg string) {
	if i.enabled {
		i.t.Log("kind: " + msg)
	}
}
func (i kindInfo) Infof(f string, a ...any) { i.Info(fmt.Sprintf(f, a...)) }
func (i kindInfo) Enabled() bool            { return i.enabled }
