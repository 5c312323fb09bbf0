//go:build e2e

package kind_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/kind"
	"kubelab/sandbox/sandboxtest"
)

// A classroom's per-learner cap (Spec.Cap) lowers the memory and CPU of
// every container of the sandbox, the kind node included, and leaves
// limits already under it alone.
func TestE2ECapReachesEveryContainer(t *testing.T) {
	requireDocker(t)
	ctx := t.Context()
	const gib = 1 << 30
	p := kind.New(kind.Options{
		WorkstationLimits: kind.Limits{Memory: gib, CPUs: 1},
		EngineLimits:      kind.Limits{Memory: 2 * gib, CPUs: 2},
		NodeLimits:        kind.Limits{Memory: 2 * gib, CPUs: 2},
	})
	id := sandboxtest.NewID("kl-cap")
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := p.Delete(dctx, id); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
	capped := sandbox.Resources{Memory: gib + gib/2, CPUs: 1.5}
	if _, err := p.Create(ctx, id, sandbox.Spec{Owner: "cap", Kind: sandbox.KindKubernetes, Cap: capped}, nil); err != nil {
		t.Fatalf("Create: %v", err)
	}
	type limit struct {
		memory   int64
		nanoCPUs int64
	}
	want := map[string]limit{
		"workstation": {gib, 1e9},           // under the cap already
		"engine":      {gib + gib/2, 1.5e9}, // capped
		"node":        {gib + gib/2, 1.5e9}, // capped, by docker update after kind
	}
	sandboxLabel := "label=kubelab.io/sandbox=" + id
	for role, filters := range map[string][]string{
		"workstation": {sandboxLabel, "label=kubelab.io/role=workstation"},
		"engine":      {sandboxLabel, "label=kubelab.io/role=engine"},
		"node":        {"label=io.x-k8s.kind.cluster=" + id},
	} {
		args := []string{"ps", "--quiet"}
		for _, f := range filters {
			args = append(args, "--filter", f)
		}
		out, err := exec.CommandContext(ctx, "docker", args...).Output()
		names := strings.Fields(string(out))
		if err != nil || len(names) != 1 {
			t.Errorf("%s of sandbox %s: docker ps found %q (%v), want one", role, id, names, err)
			continue
		}
		out, err = exec.CommandContext(ctx, "docker", "inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}", names[0]).Output()
		f := strings.Fields(string(out))
		if err != nil || len(f) != 2 {
			t.Errorf("inspect %s: %q %v", role, out, err)
			continue
		}
		mem, _ := strconv.ParseInt(f[0], 10, 64)
		cpus, _ := strconv.ParseInt(f[1], 10, 64)
		if got := (limit{mem, cpus}); got != want[role] {
			t.Errorf("%s: memory %d, NanoCpus %d; want %d, %d", role, mem, cpus, want[role].memory, want[role].nanoCPUs)
		} else {
			t.Logf("%s: memory %d MiB, %.1f CPUs", role, mem>>20, float64(cpus)/1e9)
		}
	}
}
