package main

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubelab/checker"
	"kubelab/sandbox"
	"kubelab/sandbox/checktarget"
	"kubelab/sandbox/kind"
)

// threeKubeChecks is a step's worth of checks, as a lesson would write them.
var threeKubeChecks = []string{
	"kube:\n  resource: deployments/web\n  expect:\n    - path: .status.readyReplicas\n      equals: 2\n",
	"kube:\n  resource: services/web\n  expect:\n    - path: .spec.ports[0].port\n      equals: 80\n",
	"kube:\n  resource: configmaps/model\n  expect:\n    - path: .data.version\n      equals: v1\n",
}

// benchChecks evaluates a step with three kube checks against a live kind
// sandbox 50 times, beside the same three GETs made by a bare client-go
// clientset: the floor any checker has to pay.
func benchChecks(ctx context.Context, c config, r *report) error {
	if err := exec.CommandContext(ctx, "docker", "info").Run(); err != nil {
		return fmt.Errorf("no Docker engine answers: %w", err)
	}
	p := kind.New(kind.Options{})
	id := fmt.Sprintf("kl-bench-%d", time.Now().Unix()%100000)
	sb, err := p.Create(ctx, id, sandbox.Spec{Owner: "kubelab-bench", Kind: sandbox.KindKubernetes, Images: []string{"kubelab/hello:v1"}}, nil)
	if err != nil {
		return fmt.Errorf("create a kind sandbox (kubelab images build first): %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		_ = p.Delete(dctx, id)
	}()
	setup := "kubectl create deployment web --image=kubelab/hello:v1 --replicas=2 && " +
		"kubectl expose deployment web --port=80 --target-port=8080 && " +
		"kubectl create configmap model --from-literal=version=v1 && " +
		"kubectl rollout status deployment/web --timeout=180s"
	res, err := sb.Exec(ctx, setup)
	if err != nil || res.ExitCode != 0 {
		return fmt.Errorf("prepare the cluster: %v %s", err, res.Stderr)
	}
	var checks []checker.Check
	for i, raw := range threeKubeChecks {
		spec, err := checker.Compile("kube", []byte(raw))
		if err != nil {
			return err
		}
		checks = append(checks, checker.Check{ID: fmt.Sprint(i), Title: fmt.Sprint(i), Spec: spec.(*checker.Spec)})
	}
	target := checktarget.For(sb)
	var got []time.Duration
	for i := 0; i < 50; i++ {
		start := time.Now()
		results := checker.EvaluateAll(ctx, target, checks)
		got = append(got, time.Since(start))
		for _, res := range results {
			if !res.Passed {
				return fmt.Errorf("check %s failed: %s", res.ID, res.Message)
			}
		}
	}
	cfg, err := target.KubeConfig(ctx)
	if err != nil {
		return err
	}
	// no client-side rate limit: client-go's default (5 per second) would
	// measure its own waits, not the cluster
	cfg.QPS, cfg.Burst = 1000, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var bare []time.Duration
	for i := 0; i < 50; i++ {
		start := time.Now()
		if _, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{}); err != nil {
			return err
		}
		if _, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{}); err != nil {
			return err
		}
		if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "model", metav1.GetOptions{}); err != nil {
			return err
		}
		bare = append(bare, time.Since(start))
	}
	for _, q := range []float64{50, 95} {
		a, b := percentile(got, q), percentile(bare, q)
		target := ""
		if q == 95 {
			target = "p95 < 100 ms"
		}
		r.add("checks", fmt.Sprintf("one step with three kube checks, p%.0f over 50 (kind cluster)", q),
			ms(a), ms(b)+" (3 GETs, bare clientset)", ratio(float64(a), float64(b)), target)
	}
	return nil
}
