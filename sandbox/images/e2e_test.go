//go:build e2e

package images_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/cluster"
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
	results, err := images.Build(ctx, images.Options{Log: testWriter{t}}, "node", "hello")
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
	t0 = time.Now()
	hello := images.HelloImages()[0]
	save := exec.CommandContext(ctx, "docker", "save", hello)
	archive, err := save.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := save.Start(); err != nil {
		t.Fatalf("docker save %s: %v", hello, err)
	}
	if err := nodeutils.LoadImageArchive(nodes[0], archive); err != nil {
		t.Fatalf("load %s into %s: %v", hello, nodes[0], err)
	}
	if err := save.Wait(); err != nil {
		t.Fatalf("docker save %s: %v", hello, err)
	}
	t.Logf("%s loaded in %s", hello, time.Since(t0).Round(100*time.Millisecond))

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

// testWriter sends build progress to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
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
