//go:build e2e

package kind_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/kind/pkg/cluster"

	"kubelab/sandbox"
	"kubelab/sandbox/images"
	"kubelab/sandbox/kind"
	"kubelab/sandbox/sandboxtest"
)

// These tests need the host's Docker engine and the images of
// `kubelab images build`; they fail, never skip, without them. Run:
//
//	go test -tags e2e -v -timeout 30m ./sandbox/kind/
//
// Every object they make is named kl-... and removed at the end.

var helloImage = images.HelloImages()[0]

func requireDocker(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("these tests need a Docker engine: docker info: %v: %s", err, out)
	}
	for _, img := range []string{images.NodeImage, images.EngineImage, images.WorkstationImage, helloImage} {
		if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", img).CombinedOutput(); err != nil {
			t.Fatalf("image %s is missing (kubelab images build makes it): %s", img, out)
		}
	}
}

func newProvider(t *testing.T) *kind.Provider {
	level := slog.LevelInfo
	if os.Getenv("KUBELAB_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return kind.New(kind.Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))})
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// prefixed names the suite's sandboxes kl-<suite ID>, as every object of
// these tests is named on a shared host.
type prefixed struct{ p *kind.Provider }

type renamed struct {
	sandbox.Sandbox
	id string
}

func (r renamed) ID() string { return r.id }

func (w prefixed) Name() string { return w.p.Name() }
func (w prefixed) Create(ctx context.Context, id string, spec sandbox.Spec, pf sandbox.ProgressFunc) (sandbox.Sandbox, error) {
	sb, err := w.p.Create(ctx, "kl-"+id, spec, pf)
	if err != nil {
		return nil, err
	}
	return renamed{sb, id}, nil
}
func (w prefixed) Grow(ctx context.Context, sb sandbox.Sandbox, spec sandbox.Spec, pf sandbox.ProgressFunc) (sandbox.Sandbox, error) {
	g, err := w.p.Grow(ctx, sb.(renamed).Sandbox, spec, pf)
	if err != nil {
		return nil, err
	}
	return renamed{g, sb.ID()}, nil
}
func (w prefixed) List(ctx context.Context) ([]sandbox.Sandbox, error) {
	all, err := w.p.List(ctx)
	out := make([]sandbox.Sandbox, 0, len(all))
	for _, sb := range all {
		out = append(out, renamed{sb, strings.TrimPrefix(sb.ID(), "kl-")})
	}
	return out, err
}
func (w prefixed) Delete(ctx context.Context, id string) error { return w.p.Delete(ctx, "kl-"+id) }

func TestE2EProviderDocker(t *testing.T) {
	requireDocker(t)
	sandboxtest.TestProvider(t, func(t *testing.T) sandbox.Provider { return prefixed{newProvider(t)} },
		sandbox.Spec{Kind: sandbox.KindDocker, Images: []string{helloImage}})
}

func TestE2EProviderKubernetes(t *testing.T) {
	requireDocker(t)
	sandboxtest.TestProvider(t, func(t *testing.T) sandbox.Provider { return prefixed{newProvider(t)} },
		sandbox.Spec{Kind: sandbox.KindKubernetes})
}

// figures are what TestE2EScenario measured.
type figures struct {
	baseline, docker, kube, grow time.Duration
	memWS, memEngine, memNode    float64 // MiB
}

// TestE2EScenario walks a learner's sandboxes through their life and
// prints what it measured: a bare kind cluster for comparison, a cold
// Docker sandbox, a cold Kubernetes sandbox with a preloaded image, what
// the learner sees in them, isolation, List after a restart, Grow, Delete.
func TestE2EScenario(t *testing.T) {
	requireDocker(t)
	ctx := t.Context()
	p := newProvider(t)
	var fig figures
	loadStart := loadavg()

	// B: a Docker sandbox, made cold.
	idB := sandboxtest.NewID("kl-b")
	t.Cleanup(func() { _ = p.Delete(context.Background(), idB) })
	start := time.Now()
	sbB, err := p.Create(ctx, idB, sandbox.Spec{Owner: "bob", Kind: sandbox.KindDocker, Images: []string{helloImage}}, progressLogger(t, start))
	fig.docker = time.Since(start)
	if err != nil {
		t.Fatalf("Create docker sandbox: %v", err)
	}
	t.Logf("FIGURE cold docker sandbox (network, engine, workstation, 1 image): %.1f s", fig.docker.Seconds())
	if _, ok := sbB.(interface {
		RESTConfig(context.Context) (*rest.Config, error)
	}); ok {
		t.Errorf("a docker sandbox offers RESTConfig: checkers would think it has a cluster")
	}

	// A: a Kubernetes sandbox with a preloaded image, made cold.
	idA := sandboxtest.NewID("kl-a")
	t.Cleanup(func() { _ = p.Delete(context.Background(), idA) })
	var progress []sandbox.Progress
	var pmu sync.Mutex
	logProgress := progressLogger(t, time.Now())
	start = time.Now()
	sbA, err := p.Create(ctx, idA, sandbox.Spec{Owner: "ada", Kind: sandbox.KindKubernetes, Images: []string{helloImage}}, func(pr sandbox.Progress) {
		pmu.Lock()
		progress = append(progress, pr)
		pmu.Unlock()
		logProgress(pr)
	})
	fig.kube = time.Since(start)
	if err != nil {
		t.Fatalf("Create kubernetes sandbox: %v", err)
	}
	t.Logf("FIGURE cold kubernetes sandbox (network, engine, workstation, cluster, 1 image): %.1f s", fig.kube.Seconds())

	t.Run("progress", func(t *testing.T) {
		stages := map[string]bool{}
		last := 0
		for _, pr := range progress {
			stages[pr.Stage] = true
			if pr.Percent < last {
				t.Errorf("progress went back: %+v after %d", pr, last)
			}
			last = pr.Percent
		}
		for _, s := range []string{"network", "engine", "workstation", "cluster", "ready", "images", "done"} {
			if !stages[s] {
				t.Errorf("no progress of stage %q in %+v", s, progress)
			}
		}
		if last != 100 {
			t.Errorf("progress ended at %d, want 100", last)
		}
	})

	t.Run("terminal: kubectl and docker", func(t *testing.T) {
		term := sandboxtest.OpenTerminal(t, sbA, 120, 40)
		typeLine(t, term, "kubectl get nodes")
		waitFor(t, term, regexp.MustCompile(regexp.QuoteMeta(idA)+`-control-plane\s+Ready\s`), 30*time.Second)
		typeLine(t, term, `echo "ver=$(docker run --rm `+helloImage+` --version)"`)
		waitFor(t, term, regexp.MustCompile(`ver=v1\b`), 60*time.Second)
		typeLine(t, term, `echo "who=$(id -un):$(hostname)"`)
		waitFor(t, term, regexp.MustCompile(`who=learner:kubelab`), 10*time.Second)
	})

	t.Run("terminal close ends the shell and its jobs", func(t *testing.T) {
		term := sandboxtest.OpenTerminal(t, sbA, 80, 24)
		typeLine(t, term, `sleep 1001 & nohup sleep 1002 >/dev/null 2>&1 & setsid sleep 1003 & echo "jobs=""started"`)
		waitFor(t, term, regexp.MustCompile(`jobs=started`), 10*time.Second)
		if res := exec1(t, sbA, `pgrep -c -f "sleep 100[123]"`); string(res.Stdout) != "3\n" {
			t.Fatalf("jobs running before Close: %q, want 3", res.Stdout)
		}
		start := time.Now()
		if err := term.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		t.Logf("Close took %v", time.Since(start).Round(time.Millisecond))
		if res := exec1(t, sbA, `pgrep -c -f "sleep 100[123]"; pgrep -c -f "^bash -l$"`); string(res.Stdout) != "0\n0\n" {
			t.Errorf("after Close: %q jobs and login shells running; want none", res.Stdout)
		}
	})

	t.Run("preloaded image runs in the cluster", func(t *testing.T) {
		res := exec1(t, sbA, `kubectl run hello --image=`+helloImage+` --image-pull-policy=Never --restart=Never >/dev/null &&
kubectl wait --for=condition=Ready pod/hello --timeout=90s >/dev/null &&
kubectl get pod hello -o jsonpath='{.status.phase}'`)
		if res.ExitCode != 0 || string(res.Stdout) != "Running" {
			t.Errorf("pod hello: exit %d, stdout %q, stderr %q; want Running", res.ExitCode, res.Stdout, res.Stderr)
		}
	})

	t.Run("checkers reach the cluster and the engine", func(t *testing.T) {
		kc, ok := sbA.(interface {
			RESTConfig(context.Context) (*rest.Config, error)
		})
		if !ok {
			t.Fatalf("the kubernetes sandbox has no RESTConfig")
		}
		cfg, err := kc.RESTConfig(ctx)
		if err != nil {
			t.Fatalf("RESTConfig: %v", err)
		}
		if !strings.HasPrefix(cfg.Host, "https://127.0.0.1:") {
			t.Errorf("RESTConfig host = %s, want kind's published https://127.0.0.1:<port>", cfg.Host)
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list nodes from the host: %v", err)
		}
		if len(nodes.Items) != 1 {
			t.Fatalf("%d nodes, want 1", len(nodes.Items))
		}
		if n := nodes.Items[0]; !nodeReady(n) || n.Labels["kubelab.io/sandbox"] != idA {
			t.Errorf("node %s: ready %v, labels %v; want Ready, labelled kubelab.io/sandbox=%s", n.Name, nodeReady(n), n.Labels, idA)
		}
		host := dockerHost(t, sbA)
		out := run(t, "docker", "-H", host, "ps", "--all", "--format", "{{.Image}}")
		if strings.Contains(out, "kubelab/node") || strings.Contains(out, "kubelab/workstation") {
			t.Errorf("the learner's engine shows the host's containers:\n%s", out)
		}
		if out := run(t, "docker", "-H", host, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, helloImage) {
			t.Errorf("preloaded %s is not in the learner's engine: %s", helloImage, out)
		}
	})

	t.Run("workstation is unprivileged", func(t *testing.T) {
		res := exec1(t, sbA, `id -u; grep ^CapEff /proc/self/status; grep ^NoNewPrivs /proc/self/status; test -e /var/run/docker.sock && echo socket; echo "$DOCKER_HOST $KUBECONFIG"`)
		want := "1000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\ntcp://docker:2375 /home/learner/.kube/config\n"
		if string(res.Stdout) != want {
			t.Errorf("workstation identity:\n%s\nwant\n%s", res.Stdout, want)
		}
		inspect := run(t, "docker", "inspect", "--format", "{{.HostConfig.Privileged}} {{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}} {{len .Mounts}}", idA+"-ws")
		if strings.TrimSpace(inspect) != "false 536870912 512 1000000000 0" {
			t.Errorf("workstation privileged, memory, pids, cpus, mounts = %s", inspect)
		}
		inspect = run(t, "docker", "inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", idA+"-control-plane")
		if strings.TrimSpace(inspect) != "2147483648 4096" {
			t.Errorf("node memory, pids = %s, want 2147483648 4096 (docker update)", inspect)
		}
	})

	t.Run("sandboxes are isolated", func(t *testing.T) {
		res := exec1(t, sbB, `docker run -d --name only-in-b `+helloImage+` >/dev/null && docker ps --format '{{.Names}}'`)
		if res.ExitCode != 0 || !strings.Contains(string(res.Stdout), "only-in-b") {
			t.Fatalf("docker run in B: exit %d %s %s", res.ExitCode, res.Stdout, res.Stderr)
		}
		res = exec1(t, sbA, `docker ps --all --format '{{.Names}}'`)
		if res.ExitCode != 0 || strings.Contains(string(res.Stdout), "only-in-b") {
			t.Errorf("docker ps in A: exit %d, %q: A sees B's container", res.ExitCode, res.Stdout)
		}
		hostB := dockerHost(t, sbB)
		res = exec1(t, sbA, `timeout 5 docker -H `+hostB+` version >/dev/null 2>&1 && echo reached || echo refused`)
		if strings.TrimSpace(string(res.Stdout)) != "refused" {
			t.Errorf("A's workstation reaches B's engine at %s: %q", hostB, res.Stdout)
		}
		term := sandboxtest.OpenTerminal(t, sbA, 80, 24)
		typeLine(t, term, `echo "count=$(docker ps -a | grep -c only-in-b)"`)
		waitFor(t, term, regexp.MustCompile(`count=0\b`), 20*time.Second)
	})

	t.Run("idle memory", func(t *testing.T) {
		time.Sleep(20 * time.Second) // let the cluster settle after its start
		mem := stats(t, idA+"-ws", idA+"-engine", idA+"-control-plane")
		fig.memWS, fig.memEngine, fig.memNode = mem[0], mem[1], mem[2]
		t.Logf("FIGURE idle kubernetes sandbox memory: workstation %.1f MiB, engine %.1f MiB, node %.1f MiB, total %.1f MiB",
			mem[0], mem[1], mem[2], mem[0]+mem[1]+mem[2])
	})

	t.Run("list after a restart", func(t *testing.T) {
		fresh := newProvider(t)
		all, err := fresh.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		got := map[string]sandbox.Sandbox{}
		for _, sb := range all {
			got[sb.ID()] = sb
		}
		a, b := got[idA], got[idB]
		if a == nil || a.Owner() != "ada" || a.Kind() != sandbox.KindKubernetes {
			t.Fatalf("List: %s = %v, want owner ada, kubernetes", idA, describe(a))
		}
		if b == nil || b.Owner() != "bob" || b.Kind() != sandbox.KindDocker {
			t.Fatalf("List: %s = %v, want owner bob, docker", idB, describe(b))
		}
		res := exec1(t, a, `kubectl get nodes -o name`)
		if string(res.Stdout) != "node/"+idA+"-control-plane\n" {
			t.Errorf("kubectl in the listed sandbox: %q %q", res.Stdout, res.Stderr)
		}
	})

	t.Run("delete leaves nothing", func(t *testing.T) {
		start := time.Now()
		if err := p.Delete(ctx, idA); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		t.Logf("FIGURE delete kubernetes sandbox: %.1f s", time.Since(start).Seconds())
		assertGone(t, idA)
		if err := p.Delete(ctx, idA); err != nil {
			t.Errorf("second Delete: %v", err)
		}
		if _, err := sbA.Exec(ctx, "true"); err == nil {
			t.Errorf("Exec in a deleted sandbox succeeded")
		}
	})

	// The baseline is measured here, after a cluster was made and deleted,
	// so that it and the sandbox's cluster start from the same warm caches.
	t.Run("baseline kind cluster", func(t *testing.T) {
		name := sandboxtest.NewID("kl-base")[:20]
		dir := t.TempDir()
		kp := cluster.NewProvider(cluster.ProviderWithDocker())
		start := time.Now()
		err := kp.Create(name, cluster.CreateWithNodeImage(images.NodeImage), cluster.CreateWithWaitForReady(3*time.Minute),
			cluster.CreateWithKubeconfigPath(filepath.Join(dir, "kubeconfig")))
		fig.baseline = time.Since(start)
		defer func() {
			if err := kp.Delete(name, filepath.Join(dir, "kubeconfig")); err != nil {
				t.Errorf("delete baseline cluster %s: %v", name, err)
			}
		}()
		if err != nil {
			t.Fatalf("kind create cluster %s: %v", name, err)
		}
		t.Logf("FIGURE bare kind cluster (kind Go API, same node image, wait for Ready): %.1f s", fig.baseline.Seconds())
	})

	t.Run("grow docker to kubernetes", func(t *testing.T) {
		start := time.Now()
		g, err := p.Grow(ctx, sbB, sandbox.Spec{Owner: "bob", Kind: sandbox.KindKubernetes, Workers: 1, Images: []string{helloImage}}, progressLogger(t, start))
		fig.grow = time.Since(start)
		if err != nil {
			t.Fatalf("Grow: %v", err)
		}
		t.Logf("FIGURE grow docker sandbox to kubernetes with 1 worker: %.1f s", fig.grow.Seconds())
		if g.Kind() != sandbox.KindKubernetes || g.ID() != idB {
			t.Errorf("grown sandbox %s kind %v", g.ID(), g.Kind())
		}
		res := exec1(t, g, `kubectl get nodes --no-headers | awk '{print $2}'; docker ps --format '{{.Names}}'`)
		if string(res.Stdout) != "Ready\nReady\nonly-in-b\n" {
			t.Errorf("after Grow: %q %q; want two nodes Ready and B's container still running", res.Stdout, res.Stderr)
		}
		// The control plane of a cluster with workers keeps its taint: the
		// pod runs on the worker, which must have the image too.
		res = exec1(t, g, `kubectl run hello --image=`+helloImage+` --image-pull-policy=Never --restart=Never >/dev/null &&
kubectl wait --for=condition=Ready pod/hello --timeout=90s >/dev/null && kubectl get pod hello -o jsonpath='{.spec.nodeName}'`)
		if string(res.Stdout) != idB+"-worker" {
			t.Errorf("preloaded image after Grow: pod on %q (stderr %q), want it Ready on %s-worker", res.Stdout, res.Stderr, idB)
		}
		// Routes between nodes (kubelab-netpol): the API server, on the
		// control plane, reaches the pod on the worker.
		res = exec1(t, g, `kubectl get --raw /api/v1/namespaces/default/pods/hello:8080/proxy/`)
		if string(res.Stdout) != "hello from v1\n" {
			t.Errorf("the control plane cannot reach the pod on the worker (routes between nodes): %q %q", res.Stdout, res.Stderr)
		}
		inspect := run(t, "docker", "inspect", "--format", "{{.Name}} {{.HostConfig.Memory}}", idB+"-control-plane", idB+"-worker")
		if want := fmt.Sprintf("/%s-control-plane 2147483648\n/%s-worker 2147483648\n", idB, idB); inspect != want {
			t.Errorf("node limits:\n%s\nwant\n%s", inspect, want)
		}
		// kind cannot add nodes: a lesson that needs more workers gets a
		// new cluster with them.
		start = time.Now()
		g, err = p.Grow(ctx, g, sandbox.Spec{Owner: "bob", Kind: sandbox.KindKubernetes, Workers: 2}, nil)
		if err != nil {
			t.Fatalf("Grow to 2 workers: %v", err)
		}
		t.Logf("FIGURE replace a 1-worker cluster with a 2-worker one: %.1f s", time.Since(start).Seconds())
		res = exec1(t, g, `kubectl get nodes --no-headers | awk '$2 == "Ready"' | wc -l`)
		if strings.TrimSpace(string(res.Stdout)) != "3" {
			t.Errorf("after Grow to 2 workers: %q %q; want 3 Ready nodes", res.Stdout, res.Stderr)
		}
		if err := p.Delete(ctx, idB); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		assertGone(t, idB)
	})

	t.Run("failed create cleans up", func(t *testing.T) {
		id := sandboxtest.NewID("kl-f")
		_, err := p.Create(ctx, id, sandbox.Spec{Kind: sandbox.KindDocker, Images: []string{"kubelab/no-such-image:v0"}}, nil)
		want := "create sandbox " + id + ": image kubelab/no-such-image:v0 is not on this host: `kubelab images build` makes it"
		if err == nil || err.Error() != want {
			t.Errorf("Create with a missing image: %v\nwant %s", err, want)
		}
		bad := kind.New(kind.Options{WorkstationImage: "kubelab/no-such-image:v0"})
		_, err = bad.Create(ctx, id, sandbox.Spec{Kind: sandbox.KindDocker}, nil)
		if err == nil || !strings.Contains(err.Error(), "docker run --detach --name="+id+"-ws") || !strings.Contains(err.Error(), "exit status 125") {
			t.Errorf("Create with a missing workstation image: %v; want the docker run command and its status", err)
		}
		assertGone(t, id)
	})

	t.Run("cancelled create cleans up", func(t *testing.T) {
		id := sandboxtest.NewID("kl-c")
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var cancelled time.Time
		_, err := p.Create(cctx, id, sandbox.Spec{Kind: sandbox.KindKubernetes}, func(pr sandbox.Progress) {
			if pr.Percent >= 65 && cancelled.IsZero() {
				cancelled = time.Now()
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Create cancelled while starting the control plane: err = %v, want context.Canceled", err)
		}
		if !cancelled.IsZero() {
			t.Logf("Create returned %v after it was cancelled (cleanup included)", time.Since(cancelled).Round(time.Millisecond))
		}
		assertGone(t, id)
	})

	t.Logf("SUMMARY cold docker sandbox %.1f s; cold kubernetes sandbox %.1f s (bare kind cluster %.1f s); grow docker→kubernetes %.1f s; idle kubernetes sandbox memory %.0f MiB (workstation %.1f, engine %.1f, node %.1f); host load average at start %s, at end %s",
		fig.docker.Seconds(), fig.kube.Seconds(), fig.baseline.Seconds(), fig.grow.Seconds(),
		fig.memWS+fig.memEngine+fig.memNode, fig.memWS, fig.memEngine, fig.memNode, loadStart, loadavg())
}

// loadavg is the host's 1-minute load average: the machine is shared, and
// the figures mean little without it.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func describe(sb sandbox.Sandbox) string {
	if sb == nil {
		return "missing"
	}
	return fmt.Sprintf("owner %q kind %v", sb.Owner(), sb.Kind())
}

func progressLogger(t *testing.T, start time.Time) sandbox.ProgressFunc {
	return func(pr sandbox.Progress) {
		t.Logf("progress %5.1fs %3d%% %-11s %s", time.Since(start).Seconds(), pr.Percent, pr.Stage, pr.Message)
	}
}

func typeLine(t *testing.T, term *sandboxtest.Terminal, line string) {
	t.Helper()
	if _, err := term.Write([]byte(line + "\r")); err != nil {
		t.Fatalf("type %q: %v", line, err)
	}
}

// waitFor waits until the terminal's output matches re.
func waitFor(t *testing.T, term *sandboxtest.Terminal, re *regexp.Regexp, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if re.MatchString(term.Output()) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("terminal did not print %s within %v; output:\n%s", re, d, term.Output())
}

func exec1(t *testing.T, sb sandbox.Sandbox, script string) sandbox.ExecResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	res, err := sb.Exec(ctx, script)
	if err != nil {
		t.Fatalf("Exec(%q): %v", script, err)
	}
	return res
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func dockerHost(t *testing.T, sb sandbox.Sandbox) string {
	t.Helper()
	d, ok := sb.(interface {
		DockerHost(context.Context) (string, error)
	})
	if !ok {
		t.Fatalf("sandbox %s has no DockerHost", sb.ID())
	}
	host, err := d.DockerHost(t.Context())
	if err != nil {
		t.Fatalf("DockerHost: %v", err)
	}
	if !regexp.MustCompile(`^tcp://\d+\.\d+\.\d+\.\d+:2375$`).MatchString(host) {
		t.Errorf("DockerHost = %s, want tcp://<ip>:2375", host)
	}
	return host
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// assertGone fails when anything of sandbox id is left: a labelled
// container, network or volume, or a node of its kind cluster.
func assertGone(t *testing.T, id string) {
	t.Helper()
	sel := "label=kubelab.io/sandbox=" + id
	for _, args := range [][]string{
		{"ps", "--all", "--quiet", "--filter", sel},
		{"network", "ls", "--quiet", "--filter", sel},
		{"volume", "ls", "--quiet", "--filter", sel},
		{"ps", "--all", "--quiet", "--filter", "label=io.x-k8s.kind.cluster=" + id},
	} {
		if out := strings.TrimSpace(run(t, "docker", args...)); out != "" {
			t.Errorf("docker %s: left behind: %s", strings.Join(args, " "), out)
		}
	}
	clusters, err := cluster.NewProvider(cluster.ProviderWithDocker()).List()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clusters {
		if c == id {
			t.Errorf("kind still lists cluster %s", id)
		}
	}
}

// stats returns the memory each container uses, in MiB, from docker stats.
func stats(t *testing.T, names ...string) []float64 {
	t.Helper()
	out := run(t, "docker", append([]string{"stats", "--no-stream", "--format", "{{json .}}"}, names...)...)
	byName := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var s struct{ Name, MemUsage, CPUPerc, PIDs string }
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("docker stats line %q: %v", line, err)
		}
		used, _, _ := strings.Cut(s.MemUsage, " / ")
		mib, err := parseMiB(used)
		if err != nil {
			t.Fatalf("docker stats %s: %v", s.Name, err)
		}
		t.Logf("stats %s: memory %s, cpu %s, pids %s", s.Name, s.MemUsage, s.CPUPerc, s.PIDs)
		byName[s.Name] = mib
	}
	mem := make([]float64, len(names))
	for i, n := range names {
		v, ok := byName[n]
		if !ok {
			t.Fatalf("docker stats has no %s", n)
		}
		mem[i] = v
	}
	return mem
}

// parseMiB reads docker's sizes: 12.5MiB, 1.2GiB, 900KiB, 512B.
func parseMiB(s string) (float64, error) {
	units := []struct {
		suffix string
		mib    float64
	}{{"GiB", 1024}, {"MiB", 1}, {"KiB", 1.0 / 1024}, {"GB", 1e9 / (1 << 20)}, {"MB", 1e6 / (1 << 20)}, {"kB", 1e3 / (1 << 20)}, {"B", 1.0 / (1 << 20)}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("size %q: %w", s, err)
			}
			return v * u.mib, nil
		}
	}
	return 0, fmt.Errorf("size %q: unknown unit", s)
}
