// Package images knows every container image a kubelab sandbox needs and
// builds the missing ones on this host, with no registry: Debian root file
// systems come from debootstrap and the host's apt mirror, Kubernetes,
// etcd and CoreDNS from the Go module proxy, and everything is packed with
// "docker import". This is how CI works and how an air-gapped classroom
// works; where a registry answers, a published image may stand in.
//
// The images:
//
//   - DebianImage: bookworm from debootstrap (minbase), a base for lessons.
//   - NodeImage: a kind node image assembled directly (kind's own node image
//     build needs a registry): systemd, containerd, runc and the CNI plugins
//     from Debian; kubeadm, kubelet and kubectl built from source; the
//     control-plane, etcd, CoreDNS, kube-proxy and pause images imported into
//     containerd's k8s.io namespace under the names kubeadm expects. Pods get
//     a bridge network written by containerd from the node's pod CIDR, and
//     kubelab-netpol (apps/netpol, a DaemonSet kind installs as the cluster's
//     CNI manifest) routes each node's pod range to the others and enforces
//     NetworkPolicy in every node's iptables.
//   - EngineImage: the learner's own Docker engine (Debian's docker.io); run
//     it --privileged (/var/lib/docker is a volume). Its arguments (CMD) go to
//     dockerd; by default it listens on /var/run/docker.sock and on
//     tcp://0.0.0.0:2375 without TLS, for the workstation on the sandbox's
//     own network: keep that network private, or pass other arguments.
//   - WorkstationImage: the learner's terminal: bash, kubectl, the docker
//     CLI and the usual tools, as the unprivileged user learner (uid 1000),
//     with a friendly prompt. It runs "sleep infinity"; open shells with
//     docker exec -it -u learner <c> bash -l, and set DOCKER_HOST and
//     KUBECONFIG for the learner's engine and cluster.
//   - HelloImages: the lessons' web app (apps/hello), one static binary
//     running as nobody on port 8080.
//
// Every image carries the label RecipeLabel: a hash of everything it is made
// from (versions, package lists, the files of this package). An image whose
// label matches is a cache hit; anything else is rebuilt. Intermediate
// results (root file system tarballs, binaries) are kept under the cache
// directory, and Go builds use the normal Go build cache.
package images

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Versions of what the node image runs. kubeadm of KubernetesVersion expects
// exactly these etcd, CoreDNS and pause images; the build checks that.
const (
	KubernetesVersion = "v1.34.4"
	EtcdVersion       = "v3.6.5"
	CoreDNSVersion    = "v1.12.1"
	PauseVersion      = "3.10.1"
	DebianSuite       = "bookworm"
)

// The images sandboxes use.
const (
	DebianImage      = "kubelab/debian:" + DebianSuite
	NodeImage        = "kubelab/node:" + KubernetesVersion
	EngineImage      = "kubelab/engine:20.10"                     // the Docker version it runs
	WorkstationImage = "kubelab/workstation:" + KubernetesVersion // the kubectl version it has
)

// HelloImages returns the lesson web app's images, oldest version first.
// Each answers "hello from <version>" on port 8080 and "ok" on /healthz.
func HelloImages() []string {
	return []string{"kubelab/hello:v1", "kubelab/hello:v2"}
}

// Labels on every image this package builds.
const (
	RecipeLabel = "kubelab.io/recipe" // hash of the image's inputs
	ImageLabel  = "kubelab.io/image"  // the image's short name (node, engine, ...)
	SourceLabel = "kubelab.io/source" // "built", or the published image it came from
)

// PullPolicy says when to try a published image instead of building.
type PullPolicy int

// Pull policies.
const (
	// PullAuto pulls when a quick probe finds the registry reachable.
	PullAuto PullPolicy = iota
	// PullAlways tries to pull first, whatever the probe says.
	PullAlways
	// PullNever always builds.
	PullNever
)

// Options configure Build, List and Prune. The zero value works.
type Options struct {
	// CacheDir keeps root file systems, binaries and Go wrapper modules.
	// Default: DefaultCacheDir().
	CacheDir string
	// Docker is the docker CLI. Default "docker".
	Docker string
	// Go is the go command. Default "go".
	Go string
	// CC compiles the pause binary (static C). Default "cc".
	CC string
	// Mirror is the Debian mirror for debootstrap. Default: the one this
	// host's apt uses for the suite, else http://deb.debian.org/debian.
	Mirror string
	// Pull says when to use a published image instead of building.
	Pull PullPolicy
	// Registry is probed (HTTP GET, any answer counts) under PullAuto.
	// Default https://registry-1.docker.io/v2/.
	Registry string
	// PullTimeout bounds one docker pull. Default 10 minutes.
	PullTimeout time.Duration
	// Log receives progress lines and the summary table; nil discards.
	Log io.Writer
	// Logger receives details (commands run); nil discards.
	Logger *slog.Logger
}

// DefaultCacheDir is /var/cache/kubelab for root, else
// $XDG_CACHE_HOME/kubelab (~/.cache/kubelab).
func DefaultCacheDir() string {
	if os.Geteuid() == 0 {
		return "/var/cache/kubelab"
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "kubelab-cache")
	}
	return filepath.Join(dir, "kubelab")
}

func (o Options) withDefaults() Options {
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir()
	}
	if abs, err := filepath.Abs(o.CacheDir); err == nil {
		o.CacheDir = abs
	}
	if o.Docker == "" {
		o.Docker = "docker"
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.CC == "" {
		o.CC = "cc"
	}
	if o.Registry == "" {
		o.Registry = "https://registry-1.docker.io/v2/"
	}
	if o.PullTimeout == 0 {
		o.PullTimeout = 10 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// How an image came to be on the host, in a Result.
const (
	StatusBuilt  = "built"
	StatusCached = "cached"
	StatusPulled = "pulled"
)

// Result is what Build did for one image.
type Result struct {
	Image    string        // reference, e.g. kubelab/node:v1.34.4
	Status   string        // StatusBuilt, StatusCached or StatusPulled
	Recipe   string        // the image's recipe hash
	Size     int64         // bytes, as docker reports it
	Duration time.Duration // time spent on this image
}

// Status is the state of one image on the host, from List.
type Status struct {
	Name    string    // short name: debian, node, engine, workstation, hello-v1...
	Image   string    // reference
	Recipe  string    // the recipe this package would build now
	Present bool      // the reference exists on the host
	Current bool      // and carries Recipe
	Source  string    // its SourceLabel: built, or a published reference
	Size    int64     // bytes
	Created time.Time // when the image was made
}

// Names returns the short names Build accepts, in build order. "hello"
// stands for every HelloImages entry; full references are accepted too.
func Names() []string {
	var names []string
	for _, d := range newCatalog().images {
		names = append(names, d.name)
	}
	return names
}

// Build makes sure the named images (all when none are named) are on the
// host and current, building what is missing. It prints progress and a
// summary to opts.Log and returns one Result per image, also on error for
// the images done before it.
func Build(ctx context.Context, opts Options, names ...string) ([]Result, error) {
	opts = opts.withDefaults()
	cat := newCatalog()
	defs, err := cat.resolve(names)
	if err != nil {
		return nil, err
	}
	b, err := newBuilder(ctx, opts, cat)
	if err != nil {
		return nil, err
	}
	defer b.close()
	results, err := b.build(ctx, defs)
	WriteResults(opts.Log, results)
	return results, err
}

// List reports every image of the current recipe set and whether the host
// has it.
func List(ctx context.Context, opts Options) ([]Status, error) {
	opts = opts.withDefaults()
	cat := newCatalog()
	d := newDocker(opts)
	var out []Status
	for _, def := range cat.images {
		st := Status{Name: def.name, Image: def.ref, Recipe: cat.recipe(def)}
		info, found, err := d.inspectImage(ctx, def.ref)
		if err != nil {
			return nil, err
		}
		if found {
			st.Present = true
			st.Current = info.Labels[RecipeLabel] == st.Recipe
			st.Source = info.Labels[SourceLabel]
			st.Size = info.Size
			st.Created = info.Created
		}
		out = append(out, st)
	}
	return out, nil
}

// Prune removes what earlier builds left behind: images labelled by this
// package that are not in the current recipe set (older recipes, untagged
// predecessors), leftover build containers and images, and cache files no
// current recipe uses. Each removal is printed to opts.Log.
func Prune(ctx context.Context, opts Options) error {
	opts = opts.withDefaults()
	cat := newCatalog()
	return prune(ctx, opts, cat)
}
