package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// kubeName names the cluster, user and context of the learner's
// kubeconfig.
const kubeName = "kubelab"

// apiServerPort is where the API server listens inside the cluster's
// network (kind's common.APIServerInternalPort).
const apiServerPort = 6443

// kindProvider is a kind cluster provider on the docker CLI that logs
// through l. kind runs "docker" from PATH, whatever Options.Docker says.
func kindProvider(l *kindLogger) *cluster.Provider {
	return cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(l))
}

// kubeletSeccompDefault makes every node's kubelet run containers under
// the runtime's default seccomp profile unless their pod asks for another
// (kubelab-pod-security refuses Unconfined in the learner's namespaces).
const kubeletSeccompDefault = `kind: KubeletConfiguration
seccompDefault: true
`

// clusterConfig is the kind configuration of a sandbox's cluster: one
// control plane and workers, every node labelled with the sandbox, and
// kubelets defaulting to the RuntimeDefault seccomp profile.
func clusterConfig(s identity, workers int) *v1alpha4.Cluster {
	labels := map[string]string{LabelSandbox: s.id}
	if validLabelValue(s.owner) {
		labels[LabelOwner] = s.owner
	}
	cfg := &v1alpha4.Cluster{
		TypeMeta:             v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Nodes:                []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole, Labels: labels}},
		KubeadmConfigPatches: []string{kubeletSeccompDefault},
	}
	for range workers {
		cfg.Nodes = append(cfg.Nodes, v1alpha4.Node{Role: v1alpha4.WorkerRole, Labels: labels})
	}
	return cfg
}

// validLabelValue reports whether v may be a Kubernetes label value.
func validLabelValue(v string) bool {
	if len(v) > 63 {
		return false
	}
	for i, r := range v {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || i == len(v)-1 || !strings.ContainsRune("-_.", r)) {
			return false
		}
	}
	return true
}

// createCluster makes the sandbox's kind cluster named by its ID and
// waits for every node to be Ready. While kind waits for Ready, it applies
// the learner policies, loads images (reference → host image ID) into the
// nodes and makes the learner's kubeconfig (prepareKubeconfig), which it
// returns for the caller to install. kind's Create cannot be cancelled:
// when ctx ends, the cluster's node containers are removed under it until
// it gives up.
func (p *Provider) createCluster(ctx context.Context, s identity, workers int, images map[string]string, rep *reporter) ([]byte, error) {
	// kind merges the new cluster into a kubeconfig file; give it a private
	// one so that the server's own ~/.kube/config is never touched.
	dir, err := os.MkdirTemp("", "kubelab-kind-")
	if err != nil {
		return nil, fmt.Errorf("create cluster %s: %w", s.id, err)
	}
	defer os.RemoveAll(dir)

	// The nodes go on the sandbox's own network (kindnet.go).
	release := leaseKindNetwork(networkName(s.id))
	defer release()
	kl := &kindLogger{logger: p.logger.With("sandbox_id", s.id, "component", "kind"), progress: rep, networkRead: release, singleNode: workers == 0}
	// The learner policies (policy.go) go in while kind waits for Ready
	// (a single node: from when its control plane is up): the API server
	// answers by then and every node has joined (the policies delete the
	// bootstrap token nodes join with). The images and the kubeconfig are
	// made then too: the nodes' containerd has long been up. A creation
	// that fails stops them and waits for them to end.
	policy, waited := make(chan error, 1), make(chan error, 1)
	var prepared []byte // the learner's kubeconfig, once waited has a value
	wctx, stopWaiting := context.WithCancel(ctx)
	var waiting sync.WaitGroup
	defer func() {
		stopWaiting()
		waiting.Wait()
	}()
	kl.waitingReady = func() {
		waiting.Go(func() { policy <- p.applyPolicy(wctx, s.id) })
		waiting.Go(func() {
			var err error
			prepared, err = p.readyNodes(wctx, s.id, images)
			waited <- err
		})
	}
	kp := kindProvider(kl)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		defer release() // kind failed before it read the variable
		done <- kp.Create(s.id,
			cluster.CreateWithV1Alpha4Config(clusterConfig(s, workers)),
			cluster.CreateWithNodeImage(p.opts.NodeImage),
			cluster.CreateWithWaitForReady(p.opts.ClusterWait),
			cluster.CreateWithKubeconfigPath(filepath.Join(dir, "kubeconfig")),
			cluster.CreateWithDisplayUsage(false),
			cluster.CreateWithDisplaySalutation(false),
		)
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = p.abortCluster(ctx, s.id, done)
	}
	if err != nil {
		return nil, fmt.Errorf("create cluster %s: %w", s.id, kindError(err))
	}
	if kl.gaveUp() {
		return nil, fmt.Errorf("create cluster %s: the control plane was not Ready within %v", s.id, p.opts.ClusterWait)
	}
	p.logger.Info("kind cluster created", "sandbox_id", s.id, "took", time.Since(start).Round(time.Millisecond))

	nodes, err := p.clusterNodes(ctx, s.id)
	if err != nil {
		return nil, fmt.Errorf("create cluster %s: %w", s.id, err)
	}
	for _, n := range nodes {
		if _, err := p.docker.run(ctx, nil, updateArgs(n, p.opts.NodeLimits.capped(s.cap))...); err != nil {
			return nil, fmt.Errorf("create cluster %s: limit node %s: %w", s.id, n, err)
		}
	}
	// kind waited for the control plane: a cluster of one node is Ready.
	if workers > 0 {
		if err := p.waitNodesReady(ctx, s.id, time.Until(start.Add(p.opts.ClusterWait))); err != nil {
			return nil, fmt.Errorf("create cluster %s: %w", s.id, err)
		}
	}
	kl.ready() // if kind did not say it waited, they start now
	if err := errors.Join(<-policy, <-waited); err != nil {
		return nil, fmt.Errorf("create cluster %s: %w", s.id, err)
	}
	rep.report("ready", "The cluster is ready", 90)
	return prepared, nil
}

// readyNodes does, while kind waits for the cluster to be Ready, what
// needs the API server and the nodes but not their readiness: it loads
// images into the nodes and makes the learner's kubeconfig, which it
// returns.
func (p *Provider) readyNodes(ctx context.Context, id string, images map[string]string) ([]byte, error) {
	var wg sync.WaitGroup
	var imgErr error
	if len(images) > 0 {
		wg.Go(func() {
			nodes, err := p.clusterNodes(ctx, id)
			if err == nil {
				err = p.loadImages(ctx, id, images, false, nodes)
			}
			imgErr = err
		})
	}
	learner, err := p.prepareKubeconfig(ctx, id)
	wg.Wait()
	return learner, errors.Join(imgErr, err)
}

// abortCluster removes the nodes of cluster id until kind's Create, which
// cannot be cancelled, gives up, and returns an error wrapping the
// cancelled ctx's error.
func (p *Provider) abortCluster(cancelled context.Context, id string, done <-chan error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(cancelled), cleanupTimeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if nodes, err := p.clusterNodes(ctx, id); err == nil && len(nodes) > 0 {
			_, _ = p.docker.run(ctx, nil, append([]string{"rm", "--force", "--volumes"}, nodes...)...)
		}
		select {
		case <-done:
			return fmt.Errorf("stopped kind while it created the cluster: %w", cancelled.Err())
		case <-ctx.Done():
			return fmt.Errorf("kind did not stop creating the cluster within %v: %w", cleanupTimeout, cancelled.Err())
		case <-tick.C:
		}
	}
}

// kindError adds to err the output of the command kind ran that failed:
// kind's errors name the command but keep its output apart.
func kindError(err error) error {
	re := kindexec.RunErrorForError(err)
	if re == nil {
		return err
	}
	out := strings.TrimSpace(string(re.Output))
	if out == "" {
		return err
	}
	const keep = 4 << 10
	if len(out) > keep {
		out = "..." + out[len(out)-keep:]
	}
	return fmt.Errorf("%w: %s", err, out)
}

// clusterNodes lists the node containers of kind cluster id.
func (p *Provider) clusterNodes(ctx context.Context, id string) ([]string, error) {
	out, err := p.docker.run(ctx, nil, "ps", "--all", "--filter", "label="+KindClusterLabel+"="+id, "--format", "{{.Names}}")
	if err != nil {
		return nil, fmt.Errorf("list nodes of cluster %s: %w", id, err)
	}
	return strings.Fields(string(out)), nil
}

// waitNodesReady waits up to d for every node of the cluster to be Ready
// (kind waits for the control plane only), then for the node image's
// network agent (kubelab-netpol) on every node: pods on different nodes
// reach each other only once it has written the routes. A single node
// needs neither (createCluster does not call this for it), and a node image
// without the agent (a published kindest/node) skips the second wait.
func (p *Provider) waitNodesReady(ctx context.Context, id string, d time.Duration) error {
	secs := strconv.Itoa(max(int(d.Seconds()), 1)) + "s"
	script := `set -e
k() { kubectl --kubeconfig=/etc/kubernetes/admin.conf "$@"; }
k wait --for=condition=Ready nodes --all --timeout="$1" >/dev/null || { echo "the nodes were not Ready within $1" >&2; exit 1; }
if k -n kube-system get daemonset kubelab-netpol >/dev/null 2>&1; then
  k -n kube-system rollout status daemonset/kubelab-netpol --timeout="$1" >/dev/null || { echo "the network agent (kubelab-netpol) was not ready on every node within $1" >&2; exit 1; }
fi`
	_, err := p.docker.run(ctx, nil, "exec", controlPlaneName(id), "sh", "-c", script, "sh", secs)
	if err != nil {
		return fmt.Errorf("wait for the cluster's nodes and network: %w", err)
	}
	return nil
}

// prepareKubeconfig makes the learner's kubeconfig for cluster id: a new
// client certificate signed with the cluster's CA, in kind's internal
// kubeconfig rewritten for the workstation (learnerKubeconfig). It only
// reads the cluster, so it runs while the cluster comes up; the result
// stays in memory until installKubeconfig.
func (p *Provider) prepareKubeconfig(ctx context.Context, id string) ([]byte, error) {
	raw, err := kindProvider(p.quietKind(id)).KubeConfig(id, true)
	if err != nil {
		return nil, fmt.Errorf("read the internal kubeconfig of cluster %s: %w", id, kindError(err))
	}
	cred, err := p.learnerCredentials(ctx, id)
	if err != nil {
		return nil, err
	}
	return learnerKubeconfig([]byte(raw), id, cred)
}

// installKubeconfig connects every node of the cluster to the sandbox's
// network, where the workstation reaches the API server as
// https://ID-control-plane:6443 (kind made them there; a node already on
// it is fine), and writes learner (prepareKubeconfig) as the learner's
// kubeconfig in the workstation: the learner's credentials, not kind's
// admin. createCluster has applied the learner's RBAC and admission
// policies (policy.go) and seen them enforced before it returns the
// kubeconfig: no learner credentials reach the workstation before that.
func (p *Provider) installKubeconfig(ctx context.Context, id string, learner []byte) error {
	nodes, err := p.clusterNodes(ctx, id)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if _, err := p.docker.run(ctx, nil, "network", "connect", networkName(id), n); err != nil {
			if !strings.Contains(stderrOf(err), "already exists") {
				return fmt.Errorf("connect node %s to network %s: %w", n, networkName(id), err)
			}
		}
	}
	script := `umask 077 && mkdir -p "$(dirname "$1")" && cat > "$1"`
	if _, err := p.docker.run(ctx, bytes.NewReader(learner),
		"exec", "-i", "-u", learnerUser, workstationName(id), "sh", "-c", script, "sh", kubeconfig); err != nil {
		return fmt.Errorf("write the learner's kubeconfig: %w", err)
	}
	return nil
}

// quietKind is a kind logger for calls other than Create: no progress.
func (p *Provider) quietKind(id string) *kindLogger {
	return &kindLogger{logger: p.logger.With("sandbox_id", id, "component", "kind")}
}

// learnerKubeconfig rewrites kind's internal kubeconfig of cluster id for
// the workstation: one cluster, user and context named "kubelab", the
// server https://ID-control-plane:6443 (a name Docker's DNS resolves on
// the sandbox network; kubeadm puts the node name in the API server's
// certificate), and the learner's credentials cred in place of kind's
// admin user. cred must be the learner's certificate signed by the
// cluster's CA.
func learnerKubeconfig(raw []byte, id string, cred credentials) ([]byte, error) {
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("parse the kubeconfig of cluster %s: %w", id, err)
	}
	kctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("kubeconfig of cluster %s: no current context %q", id, cfg.CurrentContext)
	}
	cl, ok := cfg.Clusters[kctx.Cluster]
	if !ok {
		return nil, fmt.Errorf("kubeconfig of cluster %s: context %q names missing cluster %q", id, cfg.CurrentContext, kctx.Cluster)
	}
	if _, ok := cfg.AuthInfos[kctx.AuthInfo]; !ok {
		return nil, fmt.Errorf("kubeconfig of cluster %s: context %q names missing user %q", id, cfg.CurrentContext, kctx.AuthInfo)
	}
	want := "https://" + controlPlaneName(id) + ":" + strconv.Itoa(apiServerPort)
	if cl.Server != want {
		return nil, fmt.Errorf("kubeconfig of cluster %s: server is %s, want %s", id, cl.Server, want)
	}
	if err := checkLearnerCert(cred.cert, cl.CertificateAuthorityData); err != nil {
		return nil, fmt.Errorf("kubeconfig of cluster %s: %w", id, err)
	}
	out := clientcmdapi.NewConfig()
	out.Clusters[kubeName] = cl
	out.AuthInfos[kubeName] = &clientcmdapi.AuthInfo{ClientCertificateData: cred.cert, ClientKeyData: cred.key}
	out.Contexts[kubeName] = &clientcmdapi.Context{Cluster: kubeName, AuthInfo: kubeName, Namespace: kctx.Namespace}
	out.CurrentContext = kubeName
	b, err := clientcmd.Write(*out)
	if err != nil {
		return nil, fmt.Errorf("encode the learner's kubeconfig: %w", err)
	}
	return b, nil
}

// deleteCluster deletes kind cluster id, if there is one.
func (p *Provider) deleteCluster(ctx context.Context, id string) error {
	nodes, err := p.clusterNodes(ctx, id)
	if err != nil || len(nodes) == 0 {
		return err
	}
	dir, err := os.MkdirTemp("", "kubelab-kind-")
	if err != nil {
		return fmt.Errorf("delete cluster %s: %w", id, err)
	}
	defer os.RemoveAll(dir)
	done := make(chan error, 1)
	go func() { done <- kindProvider(p.quietKind(id)).Delete(id, filepath.Join(dir, "kubeconfig")) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return fmt.Errorf("delete cluster %s: %w", id, ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("delete cluster %s: %w", id, kindError(err))
	}
	return nil
}
