package kind

import (
	"errors"
	"strings"
	"testing"

	"kubelab/sandbox"
)

func TestClusterCapacity(t *testing.T) {
	t.Parallel()
	const gi = int64(1 << 30)
	for _, tc := range []struct {
		name    string
		node    Limits
		workers int
		hostMem int64
		cpus    int
		want    sandbox.Resources
	}{
		{"one node", Limits{Memory: 2 * gi, CPUs: 2}, 0, 24 * gi, 2, sandbox.Resources{Memory: 2 * gi, CPUs: 2}},
		{"workers add up", Limits{Memory: 2 * gi, CPUs: 1}, 2, 24 * gi, 8, sandbox.Resources{Memory: 6 * gi, CPUs: 3}},
		{"capped by the host", Limits{Memory: 2 * gi, CPUs: 2}, 2, 4 * gi, 2, sandbox.Resources{Memory: 4 * gi, CPUs: 2}},
		{"no limits", Limits{Memory: -1, CPUs: -1}, 0, 8 * gi, 4, sandbox.Resources{Memory: 8 * gi, CPUs: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := clusterCapacity(tc.node, tc.workers, tc.hostMem, tc.cpus); got != tc.want {
				t.Errorf("clusterCapacity = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestCreateRefusesWhatDoesNotFit: a lesson asking more memory than the
// provider's nodes have is refused before anything is made, with a
// sentence for the page (the provider's docker CLI does not exist, so
// any attempt to make something would fail differently).
func TestCreateRefusesWhatDoesNotFit(t *testing.T) {
	t.Parallel()
	p := New(Options{Docker: "/nonexistent/docker", NodeLimits: Limits{Memory: 2 << 30, CPUs: 1}})
	spec := sandbox.Spec{Owner: "u", Kind: sandbox.KindKubernetes, Resources: sandbox.Resources{Memory: 3 << 30}}
	_, err := p.Create(t.Context(), "kl-fit", spec, nil)
	if !errors.Is(err, sandbox.ErrUnsupported) || !strings.Contains(err.Error(), "3Gi of memory (it has 2Gi)") {
		t.Fatalf("Create = %v, want ErrUnsupported saying 3Gi of memory (it has 2Gi)", err)
	}
	// An unknown addon is refused before anything is made, too.
	bad := sandbox.Spec{Owner: "u", Kind: sandbox.KindKubernetes, Addons: []string{"kubeflow-pipelines"}}
	if _, err := p.Create(t.Context(), "kl-fit", bad, nil); !errors.Is(err, sandbox.ErrUnsupported) || !strings.Contains(err.Error(), `unknown addon "kubeflow-pipelines"`) {
		t.Fatalf("Create with an unknown addon = %v, want ErrUnsupported naming it", err)
	}
	// One worker more gives the cluster room.
	spec.Workers = 1
	if err := p.fits(spec); err != nil {
		t.Fatalf("fits with a worker = %v, want nil", err)
	}
}
