// Package kind is the sandbox provider of real sandboxes: each learner
// gets a workstation container, their own Docker engine and, for
// Kubernetes lessons, their own kind cluster, all on the host's Docker
// engine through the docker CLI and sigs.k8s.io/kind/pkg/cluster.
//
// A sandbox with ID id (such as kl-3f2a…) owned by learner O is:
//
//   - the Docker network id (bridge) of its own;
//   - the learner's engine: container id-engine from the engine image, run
//     --privileged (Docker in Docker needs it) with /var/lib/docker on
//     the volume id-docker, dockerd listening on tcp://0.0.0.0:2375 on the
//     sandbox network only (no port published on the host) under the alias
//     "docker";
//   - the workstation: container id-ws from the workstation image, where
//     the learner's terminal runs: every capability dropped,
//     no-new-privileges, no host mounts, no Docker socket, hostname
//     kubelab, running as the image's unprivileged user (learner), with
//     DOCKER_HOST=tcp://docker:2375 and
//     KUBECONFIG=/home/learner/.kube/config;
//   - for Kubernetes: the kind cluster named id, whose nodes are the
//     containers id-control-plane, id-worker, id-worker2...
//
// The network, the volume and the two containers carry the labels
// kubelab.io/owner=O, kubelab.io/sandbox=id, kubelab.io/kind (what the
// object was made for: shell, docker or kubernetes) and kubelab.io/role.
// kind creates its node containers itself and Docker cannot label a
// container afterwards, so nodes are identified by kind's own label
// io.x-k8s.kind.cluster=id (and their Kubernetes Node objects carry the
// label kubelab.io/sandbox=id).
//
// kind creates the cluster's nodes on the sandbox's own network (kind
// reads that network's name from a process-wide variable: kindnet.go says
// how creations share it), where the workstation resolves id-control-plane
// by Docker's DNS; its kubeconfig points at https://id-control-plane:6443
// (kubeadm puts the node name in the API server's certificate). The
// server's checkers use kind's external kubeconfig
// (https://127.0.0.1:<port kind published>). No two sandboxes share a
// network: one learner's containers, nodes and pods cannot reach
// another's. Every sandbox network's bridge is named klb-…, and a host
// firewall (hostguard.go) keeps sandboxes from connecting to the host
// itself and to 169.254.0.0/16.
//
// Every container has memory (without swap), CPU and pids limits: the
// workstation and the engine through docker run flags, kind's nodes
// through docker update once kind made them (kind sets none).
//
// Images a spec lists are copied from the host (docker save) into the
// learner's engine (docker load) and into every node's containerd
// (kind's nodeutils.LoadImageArchive), skipping those already there with
// the same image ID. A shell sandbox has neither, so it loads none.
//
// A sandbox's kind is read from what exists of it: a cluster makes it
// kubernetes, an engine docker, a workstation alone shell. Sandboxes live
// in Docker, not in the process: List rebuilds them after a restart, and
// Ephemeral is false.
//
// kind runs "docker" from PATH for everything it does, whatever
// Options.Docker says; the provider's own commands use Options.Docker.
package kind

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"strings"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/images"
	"kubelab/sandbox/ptyexec"
)

// Options configure a Provider. The zero value works.
type Options struct {
	// Docker is the docker CLI. Default "docker".
	Docker string
	// NodeImage, EngineImage and WorkstationImage are the images of kind's
	// nodes, the learner's engine and the workstation. Defaults:
	// images.NodeImage, images.EngineImage, images.WorkstationImage.
	NodeImage, EngineImage, WorkstationImage string
	// Logger receives what the provider does (kind's lines included); nil
	// discards.
	Logger *slog.Logger
	// ClusterWait bounds the wait for a new cluster's nodes to be Ready.
	// Default 3m.
	ClusterWait time.Duration
	// EngineWait bounds the wait for a new engine to answer. Default 1m.
	EngineWait time.Duration
	// Limits per container; zero fields take the defaults, negative ones
	// set no limit, CPUs are capped at the machine's. Defaults: workstation
	// 512 MiB, 1 CPU, 512 pids; engine 2 CPUs, 2048 pids; each kind node 2
	// CPUs, 4096 pids; the engine's and each node's memory an eighth of the
	// host's, between 1 and 2 GiB.
	WorkstationLimits, EngineLimits, NodeLimits Limits
	// IPTables is the iptables command of the host firewall (hostguard.go).
	// Default "iptables".
	IPTables string

	closeTimeout time.Duration // between the signals of a closing terminal
}

// Timeouts.
const (
	// closeTimeout is how long a closing terminal's shell gets after each
	// signal (SIGHUP, then SIGTERM) before the next, stronger one.
	closeTimeout = 5 * time.Second
	// cleanupTimeout bounds Delete, and the removal of what a failed
	// Create made, which run even when the caller's context has ended.
	cleanupTimeout = 2 * time.Minute
)

// Provider makes kind sandboxes on the host's Docker engine.
type Provider struct {
	opts      Options
	docker    docker
	logger    *slog.Logger
	endpoints endpoints       // kubeconfigs and engine addresses, for checkers
	exits     ptyexec.Watcher // tells the terminals when their docker CLIs exit
}

var _ sandbox.Provider = (*Provider)(nil)

// New returns a Provider with opts, defaults filled in.
func New(opts Options) *Provider {
	opts.Docker = cmp.Or(opts.Docker, "docker")
	opts.NodeImage = cmp.Or(opts.NodeImage, images.NodeImage)
	opts.EngineImage = cmp.Or(opts.EngineImage, images.EngineImage)
	opts.WorkstationImage = cmp.Or(opts.WorkstationImage, images.WorkstationImage)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.ClusterWait = cmp.Or(opts.ClusterWait, 3*time.Minute)
	opts.EngineWait = cmp.Or(opts.EngineWait, time.Minute)
	ncpu := runtime.NumCPU()
	opts.WorkstationLimits = opts.WorkstationLimits.orDefault(defaultWorkstationLimits(), ncpu)
	mem := hostMemory()
	opts.EngineLimits = opts.EngineLimits.orDefault(defaultEngineLimits(mem), ncpu)
	opts.NodeLimits = opts.NodeLimits.orDefault(defaultNodeLimits(mem), ncpu)
	opts.closeTimeout = cmp.Or(opts.closeTimeout, closeTimeout)
	logger := opts.Logger.With("provider", "kind")
	return &Provider{opts: opts, docker: docker{bin: opts.Docker, logger: logger}, logger: logger}
}

// Name returns "kind".
func (p *Provider) Name() string { return "kind" }

// Ephemeral reports false: kind sandboxes outlive the process, and List
// finds them again.
func (p *Provider) Ephemeral() bool { return false }

// validID matches IDs that can name containers, networks, volumes and a
// kind cluster whose node names are host names (at most 63 characters
// with "-control-plane").
var validID = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// Create builds the sandbox id for spec: its network, then (for docker and
// kubernetes) the learner's engine, the workstation, (for kubernetes) the
// kind cluster attached to the network with its kubeconfig in the
// workstation, and the spec's images. Progress goes: network 5, engine
// 15–30, workstation 30–45, cluster 47–90 (nodes 50, control plane 60–80,
// networking and storage 83–85, ready 90), images 95, the spec's addons
// (addons.go) 96–99, done 100. A spec whose resources do not fit the
// cluster it would get, or whose addons cannot be installed, is refused
// first (capacity.go). A failed
// Create removes everything it made before it returns, and so does one
// whose ctx ends.
func (p *Provider) Create(ctx context.Context, id string, spec sandbox.Spec, progress sandbox.ProgressFunc) (sandbox.Sandbox, error) {
	if !validID.MatchString(id) {
		return nil, fmt.Errorf("create sandbox %q: an ID is 1 to 40 lower-case letters, digits and dashes", id)
	}
	if spec.Kind < sandbox.KindShell || spec.Kind > sandbox.KindKubernetes {
		return nil, fmt.Errorf("create sandbox %s: the kind provider cannot make a %s sandbox: %w", id, spec.Kind, sandbox.ErrUnsupported)
	}
	if spec.Workers < 0 {
		return nil, fmt.Errorf("create sandbox %s: %d workers", id, spec.Workers)
	}
	if err := p.admit(ctx, spec); err != nil {
		return nil, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	p.guardHost(ctx)
	log := p.logger.With("sandbox_id", id)
	start := time.Now()
	ids, err := p.hostImageIDs(ctx, spec.Images)
	if err != nil {
		return nil, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	existing, err := p.lookup(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	if !existing.empty() {
		return nil, fmt.Errorf("create sandbox %s: a sandbox with this ID exists", id)
	}

	s := identity{id: id, owner: spec.Owner, kind: spec.Kind, cap: spec.Cap}
	rep := newReporter(progress)
	sb, err := p.build(ctx, s, spec, ids, rep)
	if err != nil {
		log.Warn("sandbox creation failed, removing what was made", "err", err)
		if derr := p.Delete(ctx, id); derr != nil {
			log.Error("remove failed sandbox", "err", derr)
		}
		return nil, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	rep.report("done", "Your sandbox is ready", 100)
	log.Info("sandbox created", "owner", spec.Owner, "kind", spec.Kind.String(), "took", time.Since(start).Round(time.Millisecond))
	return sb, nil
}

// build makes the parts of a new sandbox in order.
func (p *Provider) build(ctx context.Context, s identity, spec sandbox.Spec, ids map[string]string, rep *reporter) (sandbox.Sandbox, error) {
	rep.report("network", "Creating your sandbox's network", 2)
	if _, err := p.docker.run(ctx, nil, networkArgs(s)...); err != nil {
		return nil, fmt.Errorf("create network: %w", err)
	}
	rep.report("network", "Network ready", 5)
	// The cluster, the longest part, is made while the engine and the
	// workstation start. The lesson's images go into the engine as soon
	// as it answers; while kind waits for the nodes to be Ready, they go
	// into the nodes and the learner's kubeconfig is made (installed once
	// the cluster is ready and its policies enforced).
	if spec.Kind >= sandbox.KindKubernetes {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		type created struct {
			learner []byte // the learner's kubeconfig
			err     error
		}
		done := make(chan created, 1)
		go func() {
			learner, err := p.createCluster(cctx, s, spec.Workers, ids, rep)
			done <- created{learner, err}
		}()
		fail := func(err error) (sandbox.Sandbox, error) {
			cancel()
			<-done // kind has stopped: the caller's cleanup finds everything
			return nil, err
		}
		if err := p.startContainers(ctx, s, spec, rep); err != nil {
			return fail(err)
		}
		intoEngine := make(chan error, 1)
		go func() { intoEngine <- p.loadImages(cctx, s.id, ids, true, nil) }()
		cluster := <-done
		if cluster.err != nil {
			cancel()
			<-intoEngine
			return nil, cluster.err
		}
		p.endpoints.forget(s.id)
		attachErr := p.installKubeconfig(ctx, s.id, cluster.learner)
		if len(ids) > 0 {
			rep.report("images", "Loading the lesson's images", 92)
		}
		if err := <-intoEngine; err != nil {
			return nil, err
		}
		if attachErr != nil {
			return nil, fmt.Errorf("attach cluster: %w", attachErr)
		}
		if len(ids) > 0 {
			rep.report("images", "Images loaded", 95)
		}
		if err := p.installAddons(ctx, s.id, spec.Addons, rep); err != nil {
			return nil, err
		}
		return wrap(&Sandbox{p: p, id: s.id, owner: s.owner, kind: spec.Kind}), nil
	}
	if err := p.startContainers(ctx, s, spec, rep); err != nil {
		return nil, err
	}
	if err := p.preload(ctx, s.id, spec.Kind, ids, false, rep); err != nil {
		return nil, err
	}
	return wrap(&Sandbox{p: p, id: s.id, owner: s.owner, kind: spec.Kind}), nil
}

// startContainers starts the learner's engine (docker and kubernetes
// sandboxes) and the workstation.
func (p *Provider) startContainers(ctx context.Context, s identity, spec sandbox.Spec, rep *reporter) error {
	if spec.Kind >= sandbox.KindDocker {
		if err := p.startEngine(ctx, s, rep); err != nil {
			return err
		}
	}
	rep.report("workstation", "Starting your workstation", 32)
	if _, err := p.docker.run(ctx, nil, workstationArgs(s, p.opts.WorkstationImage, p.opts.WorkstationLimits.capped(s.cap))...); err != nil {
		return fmt.Errorf("start workstation: %w", err)
	}
	rep.report("workstation", "Workstation ready", 45)
	return nil
}

func (p *Provider) startEngine(ctx context.Context, s identity, rep *reporter) error {
	rep.report("engine", "Starting your Docker engine", 15)
	if _, err := p.docker.run(ctx, nil, volumeArgs(s)...); err != nil {
		return fmt.Errorf("create engine volume: %w", err)
	}
	if _, err := p.docker.run(ctx, nil, engineArgs(s, p.opts.EngineImage, p.opts.EngineLimits.capped(s.cap))...); err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	rep.report("engine", "Waiting for your Docker engine", 20)
	if err := p.waitEngine(ctx, s.id); err != nil {
		return err
	}
	rep.report("engine", "Docker engine ready", 30)
	return nil
}

// waitEngine polls the engine with `docker -H tcp://<ip>:2375 version`
// from the host until it answers or EngineWait passes.
func (p *Provider) waitEngine(ctx context.Context, id string) error {
	wctx, cancel := context.WithTimeout(ctx, p.opts.EngineWait)
	defer cancel()
	var last error
	for {
		host, err := p.engineHost(wctx, id)
		if err == nil {
			_, err = p.docker.run(wctx, nil, "-H", host, "version", "--format", "{{.Server.Version}}")
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wait for the engine: %w", ctx.Err())
		}
		if wctx.Err() == nil {
			last = err
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("wait for the engine: %w", ctx.Err())
			}
			logs, _ := p.docker.run(context.Background(), nil, "logs", "--tail=20", engineName(id))
			return fmt.Errorf("the engine %s did not answer within %v: %w (its last log lines: %s)",
				engineName(id), p.opts.EngineWait, last, strings.TrimSpace(string(logs)))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// addCluster creates the kind cluster with images (reference → host
// image ID) in its nodes and writes the learner's kubeconfig.
func (p *Provider) addCluster(ctx context.Context, s identity, workers int, images map[string]string, rep *reporter) error {
	defer p.endpoints.forget(s.id)
	learner, err := p.createCluster(ctx, s, workers, images, rep)
	if err != nil {
		return err
	}
	if err := p.installKubeconfig(ctx, s.id, learner); err != nil {
		return fmt.Errorf("attach cluster: %w", err)
	}
	return nil
}

// preload loads images (reference → host image ID) into the engine of a
// sandbox of kind, and into its cluster's nodes when intoNodes is set.
func (p *Provider) preload(ctx context.Context, id string, kind sandbox.Kind, ids map[string]string, intoNodes bool, rep *reporter) error {
	if len(ids) == 0 || kind < sandbox.KindDocker {
		return nil
	}
	rep.report("images", "Loading the lesson's images", 92)
	var nodes []string
	if intoNodes && kind >= sandbox.KindKubernetes {
		var err error
		if nodes, err = p.clusterNodes(ctx, id); err != nil {
			return err
		}
	}
	if err := p.loadImages(ctx, id, ids, true, nodes); err != nil {
		return err
	}
	rep.report("images", "Images loaded", 95)
	return nil
}

// Grow brings sandbox sb up to spec: it adds the engine when spec needs
// Docker and the cluster when spec needs Kubernetes, loads the spec's
// images that are not there yet and installs its addons (again: that
// changes nothing). A spec that Create would refuse is refused first.
// The sandbox returned has the kind of both; its owner is spec.Owner when
// set, else sb's. When adding the
// cluster fails, the cluster is removed and the sandbox left as it was.
// kind cannot add nodes, so a spec with more workers than the cluster has
// replaces the cluster with a new one (what was in it is lost; the
// progress says so); fewer workers than there are is fine.
func (p *Provider) Grow(ctx context.Context, sb sandbox.Sandbox, spec sandbox.Spec, progress sandbox.ProgressFunc) (sandbox.Sandbox, error) {
	id := sb.ID()
	if spec.Kind > sandbox.KindKubernetes {
		return nil, fmt.Errorf("grow sandbox %s: the kind provider cannot make a %s sandbox: %w", id, spec.Kind, sandbox.ErrUnsupported)
	}
	if err := p.admit(ctx, spec); err != nil {
		return nil, fmt.Errorf("grow sandbox %s: %w", id, err)
	}
	ids, err := p.hostImageIDs(ctx, spec.Images)
	if err != nil {
		return nil, fmt.Errorf("grow sandbox %s: %w", id, err)
	}
	f, err := p.lookup(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("grow sandbox %s: %w", id, err)
	}
	if !f.workstation {
		return nil, fmt.Errorf("grow sandbox %s: %w", id, sandbox.ErrNotFound)
	}
	kind := max(f.kind(), spec.Kind)
	s := identity{id: id, owner: cmp.Or(spec.Owner, sb.Owner(), f.owner), kind: kind, cap: spec.Cap}
	rep := newReporter(progress)
	if spec.Kind >= sandbox.KindDocker && !f.engine {
		if err := p.startEngine(ctx, s, rep); err != nil {
			return nil, fmt.Errorf("grow sandbox %s: %w", id, err)
		}
	}
	if spec.Kind >= sandbox.KindKubernetes && len(f.nodes) > 0 && spec.Workers > len(f.nodes)-1 {
		// kind cannot add nodes to a cluster: a lesson that needs more
		// workers gets a new cluster, and the page says so.
		rep.report("cluster", fmt.Sprintf("This lesson needs %d worker nodes: replacing your cluster (%d nodes) with a new one", spec.Workers, len(f.nodes)), 46)
		p.endpoints.forget(id)
		if err := p.deleteCluster(ctx, id); err != nil {
			return nil, fmt.Errorf("grow sandbox %s: replace the cluster: %w", id, err)
		}
		f.nodes = nil
	}
	added := spec.Kind >= sandbox.KindKubernetes && len(f.nodes) == 0 // with the images in its nodes
	if added {
		if err := p.addCluster(ctx, s, spec.Workers, ids, rep); err != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			if derr := p.deleteCluster(dctx, id); derr != nil {
				p.logger.Error("remove the cluster of a failed grow", "sandbox_id", id, "err", derr)
			}
			cancel()
			return nil, fmt.Errorf("grow sandbox %s: %w", id, err)
		}
	}
	if err := p.preload(ctx, id, kind, ids, !added, rep); err != nil {
		return nil, fmt.Errorf("grow sandbox %s: %w", id, err)
	}
	if kind >= sandbox.KindKubernetes {
		if err := p.installAddons(ctx, id, spec.Addons, rep); err != nil {
			return nil, fmt.Errorf("grow sandbox %s: %w", id, err)
		}
	}
	rep.report("done", "Your sandbox is ready", 100)
	return wrap(&Sandbox{p: p, id: id, owner: s.owner, kind: kind}), nil
}

// List returns every sandbox of which something labelled
// kubelab.io/sandbox exists (containers, networks, volumes), plus kind
// clusters named kl-* whose sandbox left nothing else: half-made or
// half-deleted sandboxes are listed too, so that they can be deleted. The
// owner is the one labelled at creation (unknown, "", for a lone cluster).
func (p *Provider) List(ctx context.Context) ([]sandbox.Sandbox, error) {
	all, err := p.scan(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	out := make([]sandbox.Sandbox, 0, len(all))
	for _, f := range all {
		out = append(out, wrap(&Sandbox{p: p, id: f.id, owner: f.owner, kind: f.kind()}))
	}
	return out, nil
}

// Delete removes sandbox id: its kind cluster (through kind), its
// containers, volume and network, which ends its terminals and commands.
// It runs under its own timeout, not ctx's cancellation, so that a caller
// who gives up does not leave half a sandbox. Deleting a missing sandbox
// is not an error.
func (p *Provider) Delete(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	p.endpoints.forget(id)
	var errs []error
	if err := p.deleteCluster(ctx, id); err != nil {
		errs = append(errs, err)
	}
	sel := "label=" + LabelSandbox + "=" + id
	if out, err := p.docker.run(ctx, nil, "ps", "--all", "--quiet", "--filter", sel); err != nil {
		errs = append(errs, err)
	} else if ctrs := strings.Fields(string(out)); len(ctrs) > 0 {
		if _, err := p.docker.run(ctx, nil, append([]string{"rm", "--force", "--volumes"}, ctrs...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if out, err := p.docker.run(ctx, nil, "volume", "ls", "--quiet", "--filter", sel); err != nil {
		errs = append(errs, err)
	} else if vols := strings.Fields(string(out)); len(vols) > 0 {
		if _, err := p.docker.run(ctx, nil, append([]string{"volume", "rm", "--force"}, vols...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if out, err := p.docker.run(ctx, nil, "network", "ls", "--quiet", "--filter", sel); err != nil {
		errs = append(errs, err)
	} else if nets := strings.Fields(string(out)); len(nets) > 0 {
		if _, err := p.docker.run(ctx, nil, append([]string{"network", "rm"}, nets...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("delete sandbox %s: %w", id, errors.Join(errs...))
	}
	p.logger.Info("sandbox deleted", "sandbox_id", id)
	return nil
}
