package kind

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/images"
)

// addonFiles are kubelab's own manifests of each addon, one folder per
// addon name, applied in file name order after the addon's CRDs.
//
//go:embed addons
var addonFiles embed.FS

// addon is a component installed into a learner's cluster once it is up.
type addon struct {
	name  string
	title string // for the progress bar: "Installing the <title>"
	// image runs the addon; it is preloaded into every node, and its
	// crds (files in the image) are applied before the manifests.
	image string
	crds  []string
	// wait lists what must be ready before the lesson starts, as
	// `kubectl wait` arguments.
	wait [][]string
}

// addons are the addons the provider installs, by name.
func addons() map[string]addon {
	return map[string]addon{
		sandbox.AddonKubeflowTraining: {
			name:  sandbox.AddonKubeflowTraining,
			title: "Kubeflow Training Operator",
			image: images.TrainingOperatorImage,
			crds:  []string{images.TrainingOperatorCRDDir + "/kubeflow.org_pytorchjobs.yaml"},
			wait: [][]string{
				{"--for=condition=Established", "crd/pytorchjobs.kubeflow.org"},
				{"--namespace=kubeflow", "--for=condition=Available", "deployment/training-operator"},
			},
		},
	}
}

// addonWait bounds the wait for an addon to be ready. The operator's
// webhook certificate reaches its pod through a Secret volume, which the
// kubelet refreshes about once a minute.
const addonWait = 4 * time.Minute

// lookupAddons returns the addons named, or an error naming the first
// unknown one.
func lookupAddons(names []string) ([]addon, error) {
	all := addons()
	out := make([]addon, 0, len(names))
	for _, n := range names {
		a, ok := all[n]
		if !ok {
			known := make([]string, 0, len(all))
			for k := range all {
				known = append(known, k)
			}
			slices.Sort(known)
			return nil, fmt.Errorf("unknown addon %q (known: %s): %w", n, strings.Join(known, ", "), sandbox.ErrUnsupported)
		}
		out = append(out, a)
	}
	return out, nil
}

// addonImages returns the images the addons run.
func addonImages(as []addon) []string {
	var out []string
	for _, a := range as {
		if !slices.Contains(out, a.image) {
			out = append(out, a.image)
		}
	}
	return out
}

// imagePlaceholder stands for the addon's image in its manifests. It is
// replaced as text: the manifests may hold Go templates of their own,
// which the addon fills in (the operator's init container template).
const imagePlaceholder = "{{.Image}}"

// manifests returns kubelab's manifests of a as one YAML stream, with
// imagePlaceholder replaced by the addon's image.
func (a addon) manifests() ([]byte, error) {
	names, err := fs.Glob(addonFiles, path.Join("addons", a.name, "*.yaml"))
	if err != nil || len(names) == 0 {
		return nil, fmt.Errorf("addon %s has no manifests", a.name)
	}
	var out bytes.Buffer
	for _, n := range names {
		src, err := addonFiles.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n, err)
		}
		out.WriteString("---\n# " + n + "\n")
		out.Write(bytes.ReplaceAll(src, []byte(imagePlaceholder), []byte(a.image)))
		if !bytes.HasSuffix(src, []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), nil
}

// addonApplyScript runs in the control-plane node as admin: it applies
// the manifests on stdin server-side (CRDs are too large for the
// annotation a client-side apply keeps).
const addonApplyScript = `kubectl --kubeconfig=/etc/kubernetes/admin.conf apply --server-side --force-conflicts --field-manager=kubelab -f - >/dev/null`

// installAddons installs the named addons into sandbox id's cluster, whose
// nodes are up: it loads each addon's image into every node, applies the
// CRDs the image carries, then kubelab's manifests, and waits until what
// the addon lists is ready. Progress goes from 96 to 99. Installing an
// installed addon again changes nothing.
func (p *Provider) installAddons(ctx context.Context, id string, names []string, rep *reporter) error {
	if len(names) == 0 {
		return nil
	}
	as, err := lookupAddons(names)
	if err != nil {
		return err
	}
	ids, err := p.hostImageIDs(ctx, addonImages(as))
	if err != nil {
		return err
	}
	nodes, err := p.clusterNodes(ctx, id)
	if err != nil {
		return err
	}
	if err := p.loadImages(ctx, id, ids, false, nodes); err != nil {
		return err
	}
	for _, a := range as {
		rep.report("addons", "Installing the "+a.title+"…", 96)
		start := time.Now()
		if err := p.installAddon(ctx, id, a); err != nil {
			return fmt.Errorf("install the %s: %w", a.title, err)
		}
		p.logger.Info("addon installed", "sandbox_id", id, "addon", a.name, "took", time.Since(start).Round(time.Millisecond))
		rep.report("addons", "The "+a.title+" is ready", 99)
	}
	return nil
}

// installAddon applies a's CRDs and manifests to cluster id and waits for
// it.
func (p *Provider) installAddon(ctx context.Context, id string, a addon) error {
	var stream bytes.Buffer
	for _, crd := range a.crds {
		out, err := p.docker.run(ctx, nil, "run", "--rm", "--network=none", "--entrypoint=/bin/busybox", a.image, "cat", crd)
		if err != nil {
			return fmt.Errorf("read %s from image %s: %w", crd, a.image, err)
		}
		stream.WriteString("---\n")
		stream.Write(out)
	}
	m, err := a.manifests()
	if err != nil {
		return err
	}
	stream.Write(m)
	if _, err := p.docker.run(ctx, &stream, "exec", "-i", controlPlaneName(id), "sh", "-c", addonApplyScript); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	secs := fmt.Sprint(int(addonWait.Seconds()))
	for _, w := range a.wait {
		args := append([]string{"exec", controlPlaneName(id), "sh", "-c", addonWaitScript, "sh", secs}, w...)
		if _, err := p.docker.run(ctx, nil, args...); err != nil {
			return fmt.Errorf("wait for %s: %w", w[len(w)-1], err)
		}
	}
	return nil
}

// addonWaitScript runs `kubectl wait` with the arguments after $1 until it
// succeeds or $1 seconds have passed. kubectl wait gives up at once, rather
// than waiting, on an object whose status has no conditions yet (a CRD
// just created), so each try is short and failures are retried.
const addonWaitScript = `secs=$1; shift
end=$(($(date +%s) + secs))
until out=$(kubectl --kubeconfig=/etc/kubernetes/admin.conf wait --timeout=10s "$@" 2>&1); do
  [ "$(date +%s)" -lt "$end" ] || { echo "not ready within $secs s: $out" >&2; exit 1; }
  sleep 1
done`
