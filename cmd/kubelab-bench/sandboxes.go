package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/kind/pkg/cluster"

	"kubelab/sandbox"
	"kubelab/sandbox/images"
	"kubelab/sandbox/kind"
)

// benchOwner owns the sandboxes the benchmark makes directly.
const benchOwner = "kubelab-bench"

// benchPrefix starts the name of everything the section makes.
const benchPrefix = "kl-bench-"

// idleFor is how long a sandbox sits idle before its memory is read.
const idleFor = 20 * time.Second

// benchSandboxes times what a learner waits for: a cold docker-only
// sandbox, a cold sandbox with a kind cluster beside a bare `kind create
// cluster` with the same node image (alternated, so load drift hits both),
// and a warm sandbox handed out by the Manager's pool; then it reads what
// one idle sandbox costs in memory and how many would fit on this host.
// Everything it makes is deleted before it returns, on error and Ctrl-C too.
func benchSandboxes(ctx context.Context, c config, r *report) error {
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return fmt.Errorf("no Docker engine answers (docker info: %s): %w", strings.TrimSpace(string(out)), err)
	}
	for _, img := range []string{images.NodeImage, images.EngineImage, images.WorkstationImage, "kubelab/hello:v1"} {
		if err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", img).Run(); err != nil {
			return fmt.Errorf("image %s is not on this host: `kubelab images build` makes it: %w", img, err)
		}
	}
	avail, err := memAvailable()
	if err != nil {
		return err
	}
	n := c.sbRuns
	say := func(format string, args ...any) {
		if c.progress != nil {
			fmt.Fprintf(c.progress, "    "+format+"\n", args...)
		}
	}
	p := kind.New(kind.Options{})

	// Cold docker-only sandboxes.
	var docker []time.Duration
	for i := range n {
		d, err := coldSandbox(ctx, p, sandbox.Spec{Owner: benchOwner, Kind: sandbox.KindDocker}, nil)
		if err != nil {
			return err
		}
		say("cold docker-only sandbox %d/%d: %s", i+1, n, secs(d))
		docker = append(docker, d)
	}
	r.add("sandboxes", fmt.Sprintf("cold docker-only sandbox, p50 over %d", n), secs(percentile(docker, 50)), "", "", "")
	r.add("sandboxes", fmt.Sprintf("cold docker-only sandbox, p95 over %d", n), secs(percentile(docker, 95)), "", "", "< 3 s p95")

	// Cold kubernetes sandboxes and bare kind clusters, alternated: the
	// first run starts with the sandbox, which so pays for any cold cache.
	// The last sandbox sits idle before deletion for its memory figure.
	var kube, bare []time.Duration
	var idle idleMemory
	kubeSpec := sandbox.Spec{Owner: benchOwner, Kind: sandbox.KindKubernetes, Images: []string{"kubelab/hello:v1"}}
	for i := range n {
		one := func() error {
			var after func(string) error
			if i == n-1 {
				after = func(id string) error {
					say("kubernetes sandbox %s idle for %s", id, idleFor)
					var err error
					idle, err = measureIdle(ctx, id)
					return err
				}
			}
			d, err := coldSandbox(ctx, p, kubeSpec, after)
			if err != nil {
				return err
			}
			say("cold kubernetes sandbox %d/%d: %s", i+1, n, secs(d))
			kube = append(kube, d)
			return nil
		}
		other := func() error {
			d, err := bareKind(ctx)
			if err != nil {
				return err
			}
			say("bare kind create cluster %d/%d: %s", i+1, n, secs(d))
			bare = append(bare, d)
			return nil
		}
		if i%2 == 1 {
			one, other = other, one
		}
		if err := one(); err != nil {
			return err
		}
		if err := other(); err != nil {
			return err
		}
	}
	baseNote := " (bare `kind create cluster`, same node image, wait for Ready)"
	r.add("sandboxes", fmt.Sprintf("cold kubernetes sandbox (network, engine, workstation, cluster, 1 image), p50 over %d", n),
		secs(percentile(kube, 50)), secs(percentile(bare, 50))+baseNote,
		ratio(float64(percentile(kube, 50)), float64(percentile(bare, 50))), "<= 1.1x bare kind")
	r.add("sandboxes", fmt.Sprintf("cold kubernetes sandbox (network, engine, workstation, cluster, 1 image), p95 over %d", n),
		secs(percentile(kube, 95)), secs(percentile(bare, 95))+baseNote,
		ratio(float64(percentile(kube, 95)), float64(percentile(bare, 95))), "")

	// Warm hand-out, beside the cold wait it saves.
	warm, err := warmHandOuts(ctx, c, p, n, say)
	if err != nil {
		return err
	}
	cold := secs(percentile(kube, 50)) + " (cold kubernetes sandbox, p50 above)"
	r.add("sandboxes", fmt.Sprintf("warm hand-out (Manager.Acquire of a pooled kubernetes sandbox), p50 over %d", n),
		ms(percentile(warm, 50)), cold, "", "")
	r.add("sandboxes", fmt.Sprintf("warm hand-out (Manager.Acquire of a pooled kubernetes sandbox), p95 over %d", n),
		ms(percentile(warm, 95)), cold, "", "< 1 s p95")

	// Memory, and how many fit.
	mib := func(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
	r.note("sandboxes: one kubernetes sandbox (1 image loaded), idle %s, one `docker stats` sample: workstation %s (CPU %.1f%%), engine %s (CPU %.1f%%), node %s (CPU %.1f%%); total %s and %.1f%% of a CPU, within limits of %s",
		idleFor, mib(idle.ws.used), idle.ws.cpu, mib(idle.engine.used), idle.engine.cpu, mib(idle.node.used), idle.node.cpu, mib(idle.total()), idle.cpu(), mib(idle.limits()))
	var byMem, byLimits, byCPU int64
	if idle.total() > 0 {
		byMem = avail / idle.total()
	}
	if idle.limits() > 0 {
		byLimits = avail / idle.limits()
	}
	if idle.cpu() > 0 {
		byCPU = int64(float64(runtime.NumCPU()) * 100 / idle.cpu())
	}
	r.note("sandboxes: how many fit on this host: %d by idle memory (MemAvailable %s before the section / %s), %d if every container used its full memory limit, %d before idle clusters alone take all %d CPUs (CPU is the noisier figure: one sample)",
		byMem, mib(avail), mib(idle.total()), byLimits, byCPU, runtime.NumCPU())
	r.note("sandboxes: the Manager's cap (ManagerOptions.MaxSandboxes, `kubelab serve --max-sandboxes`) defaults to 0, no cap: nothing refuses a sandbox until the host runs short. By memory, `--max-sandboxes %d` on this machine (warm sandboxes count against it); %d keeps every container within its limit; %d if idle CPU is to leave room for learners' work",
		byMem, byLimits, min(byMem, byCPU))
	return nil
}

// newBenchID returns a fresh sandbox or cluster name: kl-bench-<what>-<hex>.
func newBenchID(what string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return benchPrefix + what + "-" + hex.EncodeToString(b)
}

// coldSandbox times p.Create of a new sandbox for spec, runs after (if
// any) on it, and deletes it, even when ctx ends.
func coldSandbox(ctx context.Context, p *kind.Provider, spec sandbox.Spec, after func(id string) error) (d time.Duration, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	id := newBenchID(spec.Kind.String()[:1])
	defer func() {
		if derr := deleteSandbox(ctx, p, id); derr != nil {
			d, err = 0, errors.Join(err, derr)
		}
	}()
	start := time.Now()
	if _, err := p.Create(ctx, id, spec, nil); err != nil {
		return 0, fmt.Errorf("cold %s sandbox: %w", spec.Kind, err)
	}
	d = time.Since(start)
	if after != nil {
		if err := after(id); err != nil {
			return 0, err
		}
	}
	return d, nil
}

// deleteSandbox deletes id under its own deadline, after ctx has ended too.
func deleteSandbox(ctx context.Context, p sandbox.Provider, id string) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	return p.Delete(dctx, id)
}

// bareKind times what kind alone does: a cluster through kind's Go API
// with the sandboxes' node image, waiting for Ready, as the kind
// provider's e2e test does; then deletes it. kind's Create takes no
// context: a Ctrl-C waits for it to finish, then deletes the cluster.
func bareKind(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	name := newBenchID("bare")
	dir, err := os.MkdirTemp("", "kubelab-bench-kind-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	kp := cluster.NewProvider(cluster.ProviderWithDocker())
	start := time.Now()
	err = kp.Create(name, cluster.CreateWithNodeImage(images.NodeImage), cluster.CreateWithWaitForReady(3*time.Minute),
		cluster.CreateWithKubeconfigPath(kubeconfig))
	d := time.Since(start)
	derr := kp.Delete(name, kubeconfig)
	if err != nil {
		return 0, errors.Join(fmt.Errorf("kind create cluster %s: %w", name, err), derr)
	}
	if derr != nil {
		return 0, fmt.Errorf("kind delete cluster %s: %w", name, derr)
	}
	return d, nil
}

// warmHandOuts runs a Manager with a warm pool of one kubernetes sandbox
// and times n hand-outs to new owners, each once the pool is full again. Handed-out sandboxes are released as it
// goes; the pool's and any creation in flight are deleted at the end.
func warmHandOuts(ctx context.Context, c config, p *kind.Provider, n int, say func(string, ...any)) (handOut []time.Duration, err error) {
	ids := &idRecorder{}
	var logger *slog.Logger
	if c.progress != nil {
		logger = slog.New(slog.NewTextHandler(c.progress, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	m := sandbox.NewManager(p, sandbox.ManagerOptions{
		WarmPool: 1,
		WarmSpec: sandbox.Spec{Kind: sandbox.KindKubernetes},
		IDPrefix: benchPrefix,
		Registry: ids,
		Logger:   logger,
	})
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = m.Run(runCtx)
	}()
	defer func() {
		stopRun()
		<-ran
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		errs := []error{err, m.Shutdown(cctx)}
		for _, id := range ids.all() {
			errs = append(errs, p.Delete(cctx, id))
		}
		err = errors.Join(errs...)
	}()

	for i := range n {
		waited := time.Now()
		if err := waitWarm(ctx, m, 6*time.Minute); err != nil {
			return nil, err
		}
		waitedFor := time.Since(waited)
		owner := fmt.Sprintf("%s-%d", benchOwner, i)
		start := time.Now()
		sb, err := m.Acquire(ctx, sandbox.Spec{Owner: owner, Kind: sandbox.KindKubernetes}, nil)
		d := time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("warm hand-out: %w", err)
		}
		if sb.Kind() != sandbox.KindKubernetes {
			return nil, fmt.Errorf("warm hand-out: got a %s sandbox, want kubernetes", sb.Kind())
		}
		say("warm hand-out %d/%d: %s (waited %s for the pool)", i+1, n, ms(d), secs(waitedFor))
		handOut = append(handOut, d)
		if err := m.Release(context.WithoutCancel(ctx), owner); err != nil {
			return nil, err
		}
	}
	return handOut, nil
}

// waitWarm waits until m's warm pool holds a sandbox.
func waitWarm(ctx context.Context, m *sandbox.Manager, limit time.Duration) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(limit)
	for m.Stats().Warm < 1 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("the warm pool did not fill in %s (the Manager's errors are above)", limit)
		case <-tick.C:
		}
	}
	return nil
}

// idRecorder is a sandbox.Registry that remembers every ID the Manager
// records, so that the benchmark can delete them all, warm ones included.
type idRecorder struct {
	mu  sync.Mutex
	ids []string
}

var _ sandbox.Registry = (*idRecorder)(nil)

func (r *idRecorder) SaveSandbox(_ context.Context, rec sandbox.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.ids, rec.ID) {
		r.ids = append(r.ids, rec.ID)
	}
	return nil
}

func (r *idRecorder) DeleteSandbox(context.Context, string) error { return nil }

func (r *idRecorder) Sandboxes(context.Context) ([]sandbox.Record, error) { return nil, nil }

func (r *idRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// containerUse is one container's line of `docker stats`.
type containerUse struct {
	used, limit int64
	cpu         float64 // percent of one CPU
}

// idleMemory is what the containers of one idle sandbox use.
type idleMemory struct {
	ws, engine, node containerUse
}

func (m idleMemory) total() int64  { return m.ws.used + m.engine.used + m.node.used }
func (m idleMemory) limits() int64 { return m.ws.limit + m.engine.limit + m.node.limit }
func (m idleMemory) cpu() float64  { return m.ws.cpu + m.engine.cpu + m.node.cpu }

// measureIdle waits idleFor, then reads `docker stats` for sandbox id's
// workstation, engine and control-plane node.
func measureIdle(ctx context.Context, id string) (idleMemory, error) {
	select {
	case <-ctx.Done():
		return idleMemory{}, ctx.Err()
	case <-time.After(idleFor):
	}
	cmd := exec.CommandContext(ctx, "docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.CPUPerc}}")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return idleMemory{}, fmt.Errorf("docker stats --no-stream: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	byName, err := parseStats(out)
	if err != nil {
		return idleMemory{}, err
	}
	var m idleMemory
	for _, c := range []struct {
		name string
		into *containerUse
	}{{id + "-ws", &m.ws}, {id + "-engine", &m.engine}, {id + "-control-plane", &m.node}} {
		u, ok := byName[c.name]
		if !ok {
			return idleMemory{}, fmt.Errorf("docker stats shows no container %s", c.name)
		}
		*c.into = u
	}
	return m, nil
}

// parseStats reads lines of "<name> <used> / <limit> <cpu>" as `docker
// stats --format '{{.Name}} {{.MemUsage}} {{.CPUPerc}}'` prints them.
func parseStats(out []byte) (map[string]containerUse, error) {
	got := map[string]containerUse{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 5 || f[2] != "/" {
			return nil, fmt.Errorf("docker stats: cannot read %q", sc.Text())
		}
		used, err := parseSize(f[1])
		if err != nil {
			return nil, err
		}
		limit, err := parseSize(f[3])
		if err != nil {
			return nil, err
		}
		cpu, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err != nil {
			return nil, fmt.Errorf("docker stats: cannot read CPU %q", f[4])
		}
		got[f[0]] = containerUse{used: used, limit: limit, cpu: cpu}
	}
	return got, sc.Err()
}

// parseSize reads a size as docker prints it: 12.5MiB, 2GiB, 980kB, 0B.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		factor float64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				break
			}
			return int64(v * u.factor), nil
		}
	}
	return 0, fmt.Errorf("docker stats: cannot read size %q", s)
}

// memAvailable is the host's MemAvailable, in bytes.
func memAvailable() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read host memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(line, "MemAvailable: %d kB", &kb); err == nil {
			return kb << 10, nil
		}
	}
	return 0, errors.New("read host memory: no MemAvailable in /proc/meminfo")
}
