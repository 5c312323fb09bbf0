package kind

import (
	"context"
	"fmt"
	"runtime"

	"kubelab/sandbox"
)

// clusterCapacity is what a cluster of 1+workers nodes gets from the
// provider: each node's memory and CPU limit times the nodes, capped by
// the host's memory (hostMem bytes, 0 when unknown) and CPUs. A node
// without a limit counts as the whole host.
func clusterCapacity(node Limits, workers int, hostMem int64, hostCPUs int) sandbox.Resources {
	n := int64(1 + max(workers, 0))
	var have sandbox.Resources
	switch {
	case node.Memory > 0:
		have.Memory = node.Memory * n
		if hostMem > 0 {
			have.Memory = min(have.Memory, hostMem)
		}
	default:
		have.Memory = hostMem
	}
	switch {
	case node.CPUs > 0:
		have.CPUs = min(node.CPUs*float64(n), float64(hostCPUs))
	default:
		have.CPUs = float64(hostCPUs)
	}
	return have
}

// admit checks, before anything is made, that spec can be built: its
// resources fit (fits), its addons are known and their images are on the
// host, so that a lesson that cannot run fails at once and not after its
// cluster was made.
func (p *Provider) admit(ctx context.Context, spec sandbox.Spec) error {
	if err := p.fits(spec); err != nil {
		return err
	}
	if len(spec.Addons) == 0 {
		return nil
	}
	if spec.Kind < sandbox.KindKubernetes {
		return fmt.Errorf("addons are installed into a cluster, and a %s sandbox has none: %w", spec.Kind, sandbox.ErrUnsupported)
	}
	as, err := lookupAddons(spec.Addons)
	if err != nil {
		return err
	}
	_, err = p.hostImageIDs(ctx, addonImages(as))
	return err
}

// fits returns an error wrapping sandbox.ErrUnsupported, with a sentence
// for the learner, when spec's resources do not fit the cluster this
// provider would give it.
func (p *Provider) fits(spec sandbox.Spec) error {
	if spec.Resources == (sandbox.Resources{}) {
		return nil
	}
	if spec.Kind < sandbox.KindKubernetes {
		return fmt.Errorf("resources are asked of a cluster, and a %s sandbox has none: %w", spec.Kind, sandbox.ErrUnsupported)
	}
	return sandbox.Fit(spec.Resources, clusterCapacity(p.opts.NodeLimits.capped(spec.Cap), spec.Workers, hostMemory(), runtime.NumCPU()))
}
