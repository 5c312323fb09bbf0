package kind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/distribution/reference"
	kindnodes "sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
)

// hostImageIDs returns the ID of every image on the host. A missing image
// is an error that names it and says how to make it.
func (p *Provider) hostImageIDs(ctx context.Context, images []string) (map[string]string, error) {
	ids := make(map[string]string, len(images))
	var missing []string
	for _, img := range images {
		out, err := p.docker.run(ctx, nil, "image", "inspect", "--format", "{{.Id}}", img)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			if strings.Contains(strings.ToLower(stderrOf(err)), "no such image") {
				missing = append(missing, img)
				continue
			}
			return nil, fmt.Errorf("inspect image %s: %w", img, err)
		}
		ids[img] = strings.TrimSpace(string(out))
	}
	switch len(missing) {
	case 0:
		return ids, nil
	case 1:
		return nil, fmt.Errorf("image %s is not on this host: `kubelab images build` makes it", missing[0])
	default:
		return nil, fmt.Errorf("images %s are not on this host: `kubelab images build` makes them", strings.Join(missing, ", "))
	}
}

// loadImages puts every image of ids (reference → host image ID) that is
// not there yet into the learner's engine and, when the sandbox has a
// cluster, into every node's containerd. One `docker save` archive of what
// is missing anywhere is made on the host and loaded where it is needed.
func (p *Provider) loadImages(ctx context.Context, id string, ids map[string]string, engine bool, nodes []string) error {
	if len(ids) == 0 || (!engine && len(nodes) == 0) {
		return nil
	}
	var engineHost string
	need := map[string][]string{} // target → images it lacks
	var all []string
	if engine {
		host, err := p.engineHost(ctx, id)
		if err != nil {
			return err
		}
		engineHost = host
		for img, want := range ids {
			out, err := p.docker.run(ctx, nil, "-H", host, "image", "inspect", "--format", "{{.Id}}", img)
			if err != nil || strings.TrimSpace(string(out)) != want {
				need[""] = append(need[""], img)
			}
		}
	}
	refs := make([]string, 0, len(ids))
	for img := range ids {
		refs = append(refs, normalize(img))
	}
	for _, n := range nodes {
		have, err := p.nodeImageIDs(ctx, n, refs)
		if err != nil {
			return err
		}
		for img, want := range ids {
			if have[normalize(img)] != want {
				need[n] = append(need[n], img)
			}
		}
	}
	for _, imgs := range need {
		for _, img := range imgs {
			if !slices.Contains(all, img) {
				all = append(all, img)
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	slices.Sort(all)
	archive, err := p.saveImages(ctx, all)
	if err != nil {
		return err
	}
	defer os.Remove(archive)

	var kindNodes []kindnodes.Node
	for _, n := range nodes {
		if len(need[n]) > 0 {
			if kindNodes, err = kindProvider(p.quietKind(id)).ListNodes(id); err != nil {
				return fmt.Errorf("list nodes of cluster %s: %w", id, kindError(err))
			}
			break
		}
	}
	// Every target reads the archive on its own, all at once.
	var wg sync.WaitGroup
	errs := make([]error, len(nodes)+1)
	if len(need[""]) > 0 {
		wg.Go(func() {
			f, err := os.Open(archive)
			if err != nil {
				errs[0] = fmt.Errorf("load images: %w", err)
				return
			}
			defer f.Close()
			if _, err := p.docker.run(ctx, f, "-H", engineHost, "load", "--quiet"); err != nil {
				errs[0] = fmt.Errorf("load images into the learner's engine: %w", err)
			}
		})
	}
	for i, n := range nodes {
		if len(need[n]) == 0 {
			continue
		}
		j := slices.IndexFunc(kindNodes, func(k kindnodes.Node) bool { return k.String() == n })
		if j < 0 {
			errs[i+1] = fmt.Errorf("load images into node %s: kind does not list it in cluster %s", n, id)
			continue
		}
		wg.Go(func() {
			if err := loadIntoNode(ctx, kindNodes[j], archive); err != nil {
				errs[i+1] = fmt.Errorf("load images into node %s: %w", n, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// saveImages writes images into one archive under the temporary directory
// and returns its path.
func (p *Provider) saveImages(ctx context.Context, images []string) (string, error) {
	f, err := os.CreateTemp("", "kubelab-images-*.tar")
	if err != nil {
		return "", fmt.Errorf("save images: %w", err)
	}
	name := f.Name()
	f.Close()
	args := append([]string{"save", "--output", name}, images...)
	if _, err := p.docker.run(ctx, nil, args...); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("save images: %w", err)
	}
	return name, nil
}

// loadIntoNode imports the archive into the node's containerd with kind's
// own loader. kind's call cannot be cancelled; the archive is read
// through ctx so that a cancelled load ends at the next read.
func loadIntoNode(ctx context.Context, n kindnodes.Node, archive string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := nodeutils.LoadImageArchive(n, ctxReader{ctx: ctx, r: f}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return kindError(err)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// nodeImageIDs returns the image ID (the digest of its config) of each of
// refs (normalized references) that the node's containerd has. The node
// image has ctr but not crictl, so the IDs are read from the manifests.
func (p *Provider) nodeImageIDs(ctx context.Context, node string, refs []string) (map[string]string, error) {
	out, err := p.docker.run(ctx, nil, "exec", node, "ctr", "--namespace=k8s.io", "images", "list")
	if err != nil {
		return nil, fmt.Errorf("list images of node %s: %w", node, err)
	}
	manifests := parseCtrImages(out)
	ids := make(map[string]string, len(manifests))
	for ref, digest := range manifests {
		if !slices.Contains(refs, ref) {
			continue
		}
		raw, err := p.docker.run(ctx, nil, "exec", node, "ctr", "--namespace=k8s.io", "content", "get", digest)
		if err != nil {
			continue // not a manifest we can read: reload the image
		}
		var m struct {
			Config struct {
				Digest string `json:"digest"`
			} `json:"config"`
		}
		if json.Unmarshal(raw, &m) == nil && m.Config.Digest != "" {
			ids[ref] = m.Config.Digest
		}
	}
	return ids, nil
}

// parseCtrImages reads `ctr images list`: REF TYPE DIGEST SIZE PLATFORMS
// LABELS, and returns the digest of each reference.
func parseCtrImages(out []byte) map[string]string {
	refs := make(map[string]string)
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 {
			continue
		}
		refs[f[0]] = f[2]
	}
	return refs
}

// normalize returns the full reference containerd stores an image under:
// kubelab/hello:v1 is docker.io/kubelab/hello:v1, debian is
// docker.io/library/debian:latest.
func normalize(img string) string {
	named, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return img
	}
	return reference.TagNameOnly(named).String()
}
