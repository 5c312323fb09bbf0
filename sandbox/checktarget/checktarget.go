// Package checktarget adapts a learner's sandbox to the checker's Target, so
// that the checker never imports the sandbox package.
package checktarget

import (
	"context"

	"k8s.io/client-go/rest"

	"kubelab/checker"
	"kubelab/sandbox"
)

// KubeConfigurer is a sandbox with a Kubernetes cluster.
type KubeConfigurer interface {
	RESTConfig(ctx context.Context) (*rest.Config, error)
}

// DockerEndpointer is a sandbox with its own Docker engine.
type DockerEndpointer interface {
	DockerHost(ctx context.Context) (string, error)
}

// For returns the checker Target of a sandbox. A sandbox without a cluster
// or an engine answers checker.ErrUnavailable for it.
func For(sb sandbox.Sandbox) checker.Target { return target{sb} }

type target struct{ sb sandbox.Sandbox }

func (t target) Run(ctx context.Context, script string) ([]byte, []byte, int, error) {
	res, err := t.sb.Exec(ctx, script)
	return res.Stdout, res.Stderr, res.ExitCode, err
}

func (t target) KubeConfig(ctx context.Context) (*rest.Config, error) {
	if k, ok := t.sb.(KubeConfigurer); ok {
		return k.RESTConfig(ctx)
	}
	return nil, checker.ErrUnavailable
}

func (t target) DockerHost(ctx context.Context) (string, error) {
	if d, ok := t.sb.(DockerEndpointer); ok {
		return d.DockerHost(ctx)
	}
	return "", checker.ErrUnavailable
}
