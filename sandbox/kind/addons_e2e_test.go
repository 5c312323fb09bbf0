//go:build e2e

package kind_test

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/images"
)

// TestE2EAddonKubeflowTraining grows a Kubernetes sandbox with the
// kubeflow-training addon, then, as the learner: pushes an image to a
// registry in their engine and runs a PyTorchJob (a master and a worker)
// from localhost:5000 (the nodes' registry mirror), and sees the
// operator's webhook refuse an invalid job.
func TestE2EAddonKubeflowTraining(t *testing.T) {
	requireDocker(t)
	for _, img := range []string{images.TrainingOperatorImage, images.RegistryImage} {
		if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", img).CombinedOutput(); err != nil {
			t.Fatalf("image %s is missing (kubelab images build makes it): %s", img, out)
		}
	}
	p := newProvider(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := "kl-kf-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if err := p.Delete(t.Context(), id); err != nil {
			t.Errorf("Delete: %v", err)
		}
		assertGone(t, id)
	})
	start := time.Now()
	spec := sandbox.Spec{Owner: "e2e", Kind: sandbox.KindKubernetes, Images: []string{images.RegistryImage, images.TrainingOperatorImage}}
	sb, err := p.Create(t.Context(), id, spec, progressLogger(t, start))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	spec.Addons = []string{sandbox.AddonKubeflowTraining}
	grown := time.Now()
	if sb, err = p.Grow(t.Context(), sb, spec, progressLogger(t, grown)); err != nil {
		t.Fatalf("Grow with the addon: %v", err)
	}
	t.Logf("addon installed by Grow in %v", time.Since(grown).Round(time.Second))

	push := exec1(t, sb, "set -e\n"+
		"docker run -d -p 5000:5000 --name registry "+images.RegistryImage+" >/dev/null\n"+
		"for i in $(seq 50); do curl -fs http://docker:5000/v2/ >/dev/null && break; sleep 0.2; done\n"+
		"docker tag "+images.TrainingOperatorImage+" localhost:5000/tools:v1\n"+
		"docker push localhost:5000/tools:v1 >/dev/null\n")
	if push.ExitCode != 0 {
		t.Fatalf("push to the learner's registry: exit %d: %s%s", push.ExitCode, push.Stdout, push.Stderr)
	}

	job := exec1(t, sb, "set -e\nkubectl apply -f - <<'EOF'\n"+pytorchJob+"EOF\n"+
		"kubectl wait --for=condition=Succeeded pytorchjob/e2e --timeout=180s >/dev/null\n"+
		"kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/e2e-worker-0 --timeout=120s >/dev/null\n"+
		"kubectl logs e2e-worker-0\n")
	if job.ExitCode != 0 || !strings.Contains(string(job.Stdout), "rank=1 world=2 master=e2e-master-0") {
		state := exec1(t, sb, "kubectl get pytorchjob,pods -o wide; kubectl describe pods")
		t.Fatalf("PyTorchJob e2e: exit %d: %s%s\n%s", job.ExitCode, job.Stdout, job.Stderr, state.Stdout)
	}

	bad := exec1(t, sb, "kubectl apply --dry-run=server -f - <<'EOF'\n"+badPyTorchJob+"EOF\n")
	if bad.ExitCode == 0 || !strings.Contains(string(bad.Stderr), "admission webhook") {
		t.Errorf("a PyTorchJob without a container named pytorch: exit %d: %s%s; want the operator's webhook to refuse it", bad.ExitCode, bad.Stdout, bad.Stderr)
	}
}

// pytorchJob prints, in each replica, what the operator told it.
const pytorchJob = `apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata:
  name: e2e
spec:
  runPolicy: {cleanPodPolicy: None}
  pytorchReplicaSpecs:
    Master:
      replicas: 1
      restartPolicy: Never
      template:
        spec:
          containers:
            - name: pytorch
              image: localhost:5000/tools:v1
              command: [sh, -c, 'echo "rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR"; sleep 5']
    Worker:
      replicas: 1
      restartPolicy: Never
      template:
        spec:
          containers:
            - name: pytorch
              image: localhost:5000/tools:v1
              command: [sh, -c, 'echo "rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR"']
`

// badPyTorchJob has no container named pytorch, which the operator's
// webhook refuses.
const badPyTorchJob = `apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata:
  name: bad
spec:
  pytorchReplicaSpecs:
    Master:
      replicas: 1
      template:
        spec:
          containers:
            - name: not-pytorch
              image: localhost:5000/tools:v1
`
