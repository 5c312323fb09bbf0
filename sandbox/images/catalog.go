package images

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
)

// recipeVersion changes when the way images are assembled changes in a way
// the other inputs do not show; bumping it rebuilds everything.
const recipeVersion = "1"

//go:embed files apps/hello/main.go apps/netpol apps/authz/*.go
var embedded embed.FS

// rootfsSpec is a Debian root file system made by debootstrap, then
// adjusted by files/<name>/setup.sh and files/cleanup.sh run in a chroot.
type rootfsSpec struct {
	name     string
	packages []string // on top of the minbase variant
}

// binarySpec is a program built for the images.
type binarySpec struct {
	name    string
	kind    string   // "go" (a module from the proxy), "go-local" (embedded source), "c"
	module  string   // go: module path
	version string   // go: module version
	staging string   // go: version for the module's staging replaces (k8s.io/*)
	pkg     string   // go: package to build; go-local: embedded file or directory; c: embedded file
	ldflags []string // go, go-local: -X settings and the like
	// requires are go-local's module requirements ("k8s.io/client-go
	// v0.34.4"); what they need comes from the module proxy.
	requires []string
}

// overlay is one entry laid over an image's root file system.
type overlay struct {
	path   string // in the image, no leading slash
	mode   int64  // permission bits; directories get 0755 when zero
	uid    int
	gid    int
	embed  string // content: an embedded file
	data   string // content: literal
	binary string // content: a binarySpec's output
	from   string // content: the file at path in rootfs spec from ("engine:usr/bin/docker")
	gen    string // content: generated at build time ("kubectl-completion")
	// module: content: a file of a Go module from the proxy,
	// "module@version:path" (a CRD the module ships).
	module string
	link   string // a symbolic link to this target
	dir    bool   // a directory
}

// config is an image's run-time configuration.
type config struct {
	Entrypoint []string `json:",omitempty"`
	Cmd        []string `json:",omitempty"`
	Env        []string `json:",omitempty"`
	User       string   `json:",omitempty"`
	WorkingDir string   `json:",omitempty"`
	Volumes    []string `json:",omitempty"`
	Ports      []string `json:",omitempty"`
	StopSignal string   `json:",omitempty"`
}

// imageDef says how to make one image.
type imageDef struct {
	name      string // short name
	ref       string
	published string // a published image that may stand in; "" for none
	rootfs    string // rootfsSpec name; "" for scratch
	overlays  []overlay
	config    config
	// containerd lists images imported into the image's containerd (k8s.io
	// namespace) at build time: the node's control plane and addons.
	containerd []imageDef
}

// catalog is the current recipe set.
type catalog struct {
	rootfs   map[string]rootfsSpec
	binaries map[string]binarySpec
	images   []imageDef // in build order
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func newCatalog() *catalog {
	k8s := func(name string) binarySpec {
		return binarySpec{
			name: name, kind: "go", module: "k8s.io/kubernetes", version: KubernetesVersion,
			staging: "v0" + strings.TrimPrefix(KubernetesVersion, "v1"),
			pkg:     "k8s.io/kubernetes/cmd/" + name, ldflags: kubernetesLDFlags(KubernetesVersion),
		}
	}
	c := &catalog{
		rootfs: map[string]rootfsSpec{
			"debian": {name: "debian"},
			"node": {name: "node", packages: []string{
				"systemd", "containerd", "runc", "containernetworking-plugins",
				"iptables", "nftables", "iproute2", "conntrack", "ebtables", "ethtool", "socat",
				"mount", "util-linux", "kmod", "procps", "ca-certificates", "libseccomp2",
			}},
			"kube-proxy":  {name: "kube-proxy", packages: []string{"iptables", "conntrack", "ipset", "kmod", "iproute2"}}, // and kubelab-netpol
			"engine":      {name: "engine", packages: []string{"docker.io", "ca-certificates", "iproute2", "procps", "kmod", "xz-utils"}},
			"workstation": {name: "workstation", packages: []string{"bash-completion", "curl", "jq", "vim", "nano", "git", "less", "ca-certificates", "procps", "iputils-ping", "dnsutils", "netcat-openbsd"}},
			"python":      {name: "python", packages: []string{"python3", "python3-numpy", "python3-sklearn", "python3-flask", "curl", "ca-certificates", "procps"}},
			"registry":    {name: "registry", packages: []string{"docker-registry", "ca-certificates"}},
		},
		binaries: map[string]binarySpec{
			"kubeadm":                 k8s("kubeadm"),
			"kubelet":                 k8s("kubelet"),
			"kubectl":                 k8s("kubectl"),
			"kube-apiserver":          k8s("kube-apiserver"),
			"kube-controller-manager": k8s("kube-controller-manager"),
			"kube-scheduler":          k8s("kube-scheduler"),
			"kube-proxy":              k8s("kube-proxy"),
			"etcd":                    {name: "etcd", kind: "go", module: "go.etcd.io/etcd/server/v3", version: EtcdVersion, pkg: "go.etcd.io/etcd/server/v3"},
			"coredns":                 {name: "coredns", kind: "go", module: "github.com/coredns/coredns", version: CoreDNSVersion, pkg: "github.com/coredns/coredns"},
			"pause":                   {name: "pause", kind: "c", pkg: "files/pause/pause.c"},
		},
	}
	staging := "v0" + strings.TrimPrefix(KubernetesVersion, "v1")
	c.binaries["kubelab-netpol"] = binarySpec{
		name: "kubelab-netpol", kind: "go-local", pkg: "apps/netpol",
		requires: []string{"k8s.io/api " + staging, "k8s.io/apimachinery " + staging, "k8s.io/client-go " + staging},
	}
	// The authorization plugin in front of the learner's engine: stdlib only.
	c.binaries["kubelab-authz"] = binarySpec{name: "kubelab-authz", kind: "go-local", pkg: "apps/authz"}
	// The Kubeflow Training Operator (addon kubeflow-training) and the
	// PyTorch image its lessons' training workers start from.
	c.binaries["training-operator"] = binarySpec{
		name: "training-operator", kind: "go", module: TrainingOperatorModule, version: TrainingOperatorVersion,
		pkg: TrainingOperatorModule + "/cmd/training-operator.v1",
	}
	c.rootfs["pytorch"] = rootfsSpec{name: "pytorch", packages: []string{"python3", "python3-torch", "python3-numpy", "busybox-static", "procps"}}
	for _, v := range []string{"v1", "v2"} {
		c.binaries["hello-"+v] = binarySpec{name: "hello-" + v, kind: "go-local", pkg: "apps/hello/main.go", ldflags: []string{"-X main.version=" + v}}
	}

	c.images = append(c.images, imageDef{
		name: "debian", ref: DebianImage, rootfs: "debian",
		config: config{Cmd: []string{"bash"}, Env: []string{defaultPath, "LANG=C.UTF-8"}},
	})
	c.images = append(c.images, imageDef{
		name: "engine", ref: EngineImage, rootfs: "engine",
		overlays: []overlay{
			{path: "usr/local/bin/kubelab-engine", mode: 0o755, embed: "files/engine/entrypoint"},
			{path: "usr/local/bin/kubelab-authz", mode: 0o755, binary: "kubelab-authz"},
		},
		config: config{
			Entrypoint: []string{"/usr/local/bin/kubelab-engine"},
			Cmd:        []string{"--host=unix:///var/run/docker.sock", "--host=tcp://0.0.0.0:2375", "--tls=false"},
			Env:        []string{defaultPath},
			Volumes:    []string{"/var/lib/docker"},
			Ports:      []string{"2375/tcp"},
		},
	})
	c.images = append(c.images, c.nodeImage())
	c.images = append(c.images, imageDef{
		name: "workstation", ref: WorkstationImage, rootfs: "workstation",
		overlays: []overlay{
			{path: "usr/bin/kubectl", mode: 0o755, binary: "kubectl"},
			{path: "usr/share/bash-completion/completions/kubectl", mode: 0o644, gen: "kubectl-completion"},
			{path: "usr/bin/docker", mode: 0o755, from: "engine:usr/bin/docker"},
			{path: "usr/share/bash-completion/completions/docker", mode: 0o644, from: "engine:usr/share/bash-completion/completions/docker"},
			{path: "etc/skel/.bashrc", mode: 0o644, embed: "files/workstation/bashrc"},
			{path: "root/.bashrc", mode: 0o644, embed: "files/workstation/bashrc"},
			{path: "home/learner/.bashrc", mode: 0o644, uid: 1000, gid: 1000, embed: "files/workstation/bashrc"},
		},
		config: config{
			Cmd:        []string{"sleep", "infinity"},
			Env:        []string{defaultPath, "LANG=C.UTF-8"},
			User:       "learner",
			WorkingDir: "/home/learner",
		},
	})
	for i, ref := range HelloImages() {
		v := []string{"v1", "v2"}[i]
		c.images = append(c.images, imageDef{
			name: "hello-" + v, ref: ref,
			overlays: append(staticBase(), overlay{path: "hello", mode: 0o755, binary: "hello-" + v}),
			config: config{
				Entrypoint: []string{"/hello"},
				User:       "65534",
				Ports:      []string{"8080/tcp"},
			},
		})
	}
	c.images = append(c.images, lessonImages()...)
	return c
}

// nodeImage is the kind node image and the images inside it.
func (c *catalog) nodeImage() imageDef {
	static := func(ref, bin, dest string, entrypoint []string) imageDef {
		return imageDef{
			name: bin, ref: ref,
			overlays: append(staticBase(), overlay{path: dest, mode: 0o755, binary: bin}),
			config:   config{Entrypoint: entrypoint, Env: []string{defaultPath}},
		}
	}
	components := []imageDef{
		static("registry.k8s.io/kube-apiserver:"+KubernetesVersion, "kube-apiserver", "usr/local/bin/kube-apiserver", []string{"/usr/local/bin/kube-apiserver"}),
		static("registry.k8s.io/kube-controller-manager:"+KubernetesVersion, "kube-controller-manager", "usr/local/bin/kube-controller-manager", []string{"/usr/local/bin/kube-controller-manager"}),
		static("registry.k8s.io/kube-scheduler:"+KubernetesVersion, "kube-scheduler", "usr/local/bin/kube-scheduler", []string{"/usr/local/bin/kube-scheduler"}),
		static("registry.k8s.io/etcd:"+strings.TrimPrefix(EtcdVersion, "v")+"-0", "etcd", "usr/local/bin/etcd", []string{"/usr/local/bin/etcd"}),
		static("registry.k8s.io/coredns/coredns:"+CoreDNSVersion, "coredns", "coredns", []string{"/coredns"}),
		static("registry.k8s.io/pause:"+PauseVersion, "pause", "pause", []string{"/pause"}),
		{
			name: "kube-proxy", ref: "registry.k8s.io/kube-proxy:" + KubernetesVersion, rootfs: "kube-proxy",
			overlays: []overlay{
				{path: "usr/local/bin/kube-proxy", mode: 0o755, binary: "kube-proxy"},
				// The network agent (routes between nodes, NetworkPolicy;
				// files/node/default-cni.yaml) needs the same tools and
				// shares this image, so containerd unpacks it once.
				{path: "usr/local/bin/kubelab-netpol", mode: 0o755, binary: "kubelab-netpol"},
				{path: "usr/sbin/iptables-wrapper", mode: 0o755, embed: "files/kube-proxy/iptables-wrapper"},
			},
			config: config{Entrypoint: []string{"/usr/local/bin/kube-proxy"}, Env: []string{defaultPath}},
		},
	}
	wants := "etc/systemd/system/multi-user.target.wants/"
	return imageDef{
		name: "node", ref: NodeImage, published: "kindest/node:" + KubernetesVersion, rootfs: "node",
		overlays: []overlay{
			{path: "usr/bin/kubeadm", mode: 0o755, binary: "kubeadm"},
			{path: "usr/bin/kubelet", mode: 0o755, binary: "kubelet"},
			{path: "usr/bin/kubectl", mode: 0o755, binary: "kubectl"},
			{path: "usr/local/bin/entrypoint", mode: 0o755, embed: "files/node/entrypoint"},
			{path: "usr/local/bin/kubelab-kubelet-cgroups", mode: 0o755, embed: "files/node/kubelet-cgroups"},
			{path: "etc/containerd/config.toml", mode: 0o644, embed: "files/node/containerd.toml"},
			{path: "etc/containerd/cni.template", mode: 0o644, embed: "files/node/cni.template"},
			{path: "etc/containerd/certs.d/localhost:5000/hosts.toml", mode: 0o644, embed: "files/node/registry-localhost-5000.toml"},
			{path: "etc/systemd/system/kubelet.service", mode: 0o644, embed: "files/node/kubelet.service"},
			{path: "etc/systemd/system/kubelet.service.d/10-kubeadm.conf", mode: 0o644, embed: "files/node/10-kubeadm.conf"},
			{path: "etc/systemd/system/kubelet.service.d/11-kubelab.conf", mode: 0o644, embed: "files/node/11-kubelab.conf"},
			{path: "etc/systemd/system/kubelet.slice", mode: 0o644, embed: "files/node/kubelet.slice"},
			{path: "etc/systemd/system/kubelab-undo-mounts.service", mode: 0o644, embed: "files/node/undo-mounts.service"},
			{path: wants + "containerd.service", link: "/lib/systemd/system/containerd.service"},
			{path: wants + "kubelet.service", link: "/etc/systemd/system/kubelet.service"},
			{path: wants + "kubelab-undo-mounts.service", link: "/etc/systemd/system/kubelab-undo-mounts.service"},
			{path: "etc/default/kubelet", mode: 0o644, embed: "files/node/kubelet.default"},
			{path: "etc/sysctl.d/10-kubelab.conf", mode: 0o644, embed: "files/node/sysctl.conf"},
			{path: "kind/manifests/default-cni.yaml", mode: 0o644, embed: "files/node/default-cni.yaml"},
			{path: "kind/version", mode: 0o644, data: KubernetesVersion + "\n"},
		},
		config: config{
			Entrypoint: []string{"/usr/local/bin/entrypoint", "/sbin/init"},
			Env:        []string{defaultPath, "container=docker"},
			StopSignal: "SIGRTMIN+3",
		},
		containerd: components,
	}
}

// staticBase is the little a single static binary needs around it.
func staticBase() []overlay {
	return []overlay{
		{path: "etc/passwd", mode: 0o644, data: "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"},
		{path: "etc/group", mode: 0o644, data: "root:x:0:\nnogroup:x:65534:\n"},
		{path: "etc/nsswitch.conf", mode: 0o644, data: "hosts: files dns\n"},
		{path: "tmp", mode: 0o1777, dir: true},
	}
}

// kubernetesLDFlags sets the version every Kubernetes binary reports;
// without it kubeadm sees v0.0.0 and refuses the skew.
func kubernetesLDFlags(version string) []string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(version, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	var flags []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags,
			"-X "+pkg+".gitVersion="+version,
			"-X "+pkg+".gitMajor="+major,
			"-X "+pkg+".gitMinor="+minor,
			"-X "+pkg+".gitTreeState=clean",
			"-X "+pkg+".buildDate=1970-01-01T00:00:00Z",
		)
	}
	return flags
}

// resolve turns names (short names, "hello", or references) into image
// definitions, in build order, without duplicates. No names means all.
func (c *catalog) resolve(names []string) ([]imageDef, error) {
	if len(names) == 0 {
		return c.images, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		found := false
		for _, d := range c.images {
			if n == d.name || n == d.ref || (n == "hello" && strings.HasPrefix(d.name, "hello-")) {
				want[d.name] = true
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown image %q (known: %s, hello, or a full reference)", n, strings.Join(Names(), ", "))
		}
	}
	var out []imageDef
	for _, d := range c.images {
		if want[d.name] {
			out = append(out, d)
		}
	}
	return out, nil
}

// hasher accumulates recipe inputs, one labelled line each.
type hasher struct{ lines []string }

func (h *hasher) add(key string, values ...string) {
	h.lines = append(h.lines, key+"="+strings.Join(values, " "))
}

func (h *hasher) sum() string {
	s := sha256.Sum256([]byte(strings.Join(h.lines, "\n")))
	return hex.EncodeToString(s[:])[:24]
}

// fileHash is the hash of an embedded file, or of its absence.
func fileHash(path string) string {
	data, err := fs.ReadFile(embedded, path)
	if err != nil {
		return "missing"
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:8])
}

// sourceHash is the hash of an embedded file, or of the Go sources of an
// embedded directory (tests left out: they are not built).
func sourceHash(path string) string {
	files, err := localSources(path)
	if err != nil {
		return fileHash(path)
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s %s\n", f, fileHash(f))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// localSources lists the Go files of an embedded directory that a build
// uses, sorted.
func localSources(dir string) ([]string, error) {
	entries, err := fs.ReadDir(embedded, dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			files = append(files, dir+"/"+n)
		}
	}
	return files, nil
}

// rootfsKey identifies a root file system: suite, packages and scripts.
func (c *catalog) rootfsKey(name string) string {
	spec := c.rootfs[name]
	h := &hasher{}
	h.add("recipe", recipeVersion)
	h.add("suite", DebianSuite, "minbase")
	pkgs := slices.Clone(spec.packages)
	sort.Strings(pkgs)
	h.add("packages", pkgs...)
	h.add("setup", fileHash("files/"+name+"/setup.sh"))
	h.add("cleanup", fileHash("files/cleanup.sh"))
	return h.sum()
}

// binaryKey identifies a binary: what it is built from and how.
func (c *catalog) binaryKey(name string) string {
	spec := c.binaries[name]
	h := &hasher{}
	h.add("recipe", recipeVersion)
	h.add("kind", spec.kind)
	h.add("module", spec.module, spec.version, spec.staging)
	h.add("pkg", spec.pkg)
	h.add("ldflags", spec.ldflags...)
	if len(spec.requires) > 0 { // absent before go-local had requirements: keys stay as they were
		h.add("requires", spec.requires...)
	}
	if spec.kind != "go" {
		h.add("source", sourceHash(spec.pkg))
	}
	return h.sum()
}

// recipe is the hash of everything an image is made from.
func (c *catalog) recipe(d imageDef) string {
	h := &hasher{}
	h.add("recipe", recipeVersion)
	h.add("ref", d.ref)
	if d.rootfs != "" {
		h.add("rootfs", d.rootfs, c.rootfsKey(d.rootfs))
	}
	for _, o := range d.overlays {
		src := ""
		switch {
		case o.embed != "":
			src = "embed " + fileHash(o.embed)
		case o.binary != "":
			src = "binary " + c.binaryKey(o.binary)
		case o.from != "":
			spec, _, _ := strings.Cut(o.from, ":")
			src = "from " + o.from + " " + c.rootfsKey(spec)
		case o.gen != "":
			src = "gen " + o.gen + " " + c.binaryKey("kubectl")
		case o.module != "":
			src = "module " + o.module
		case o.link != "":
			src = "link " + o.link
		case o.dir:
			src = "dir"
		default:
			s := sha256.Sum256([]byte(o.data))
			src = "data " + hex.EncodeToString(s[:8])
		}
		h.add("overlay", o.path, fmt.Sprintf("%o", o.mode), fmt.Sprint(o.uid), fmt.Sprint(o.gid), src)
	}
	cfg, _ := json.Marshal(d.config)
	h.add("config", string(cfg))
	for _, sub := range d.containerd {
		h.add("containerd", sub.ref, c.recipe(sub))
	}
	return h.sum()
}

// rootfsNames lists the root file systems d needs, its own first.
func (c *catalog) rootfsNames(d imageDef) []string {
	var names []string
	add := func(n string) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	add(d.rootfs)
	for _, o := range d.overlays {
		if o.from != "" {
			spec, _, _ := strings.Cut(o.from, ":")
			add(spec)
		}
	}
	for _, sub := range d.containerd {
		for _, n := range c.rootfsNames(sub) {
			add(n)
		}
	}
	return names
}

// binaryNames lists the binaries d needs.
func (c *catalog) binaryNames(d imageDef) []string {
	var names []string
	add := func(n string) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, o := range d.overlays {
		add(o.binary)
		if o.gen == "kubectl-completion" {
			add("kubectl")
		}
	}
	for _, sub := range d.containerd {
		for _, n := range c.binaryNames(sub) {
			add(n)
		}
	}
	return names
}
