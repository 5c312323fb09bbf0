package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// prune removes images, containers and cache files that no current recipe
// uses. Images still used by a container are kept, and said so.
func prune(ctx context.Context, opts Options, cat *catalog) error {
	lock, err := lockCache(ctx, opts.CacheDir, opts.Log)
	if err != nil {
		return err
	}
	defer lock.Close()
	d := newDocker(opts)
	current := map[string]string{} // ref -> recipe
	for _, def := range cat.images {
		current[def.ref] = cat.recipe(def)
	}

	// Build containers and images a failed or interrupted build left.
	out, err := d.cmd("ps", "--all", "--filter", "name="+buildContainerPrefix, "--format", "{{.Names}}").output(ctx, opts.Logger)
	if err != nil {
		return fmt.Errorf("list build containers: %w", err)
	}
	for _, name := range strings.Fields(out) {
		if !strings.HasPrefix(name, buildContainerPrefix) {
			continue
		}
		if err := d.cmd("rm", "-f", "-v", name).run(ctx, opts.Logger); err != nil {
			return fmt.Errorf("remove build container %s: %w", name, err)
		}
		fmt.Fprintf(opts.Log, "removed build container %s\n", name)
	}
	out, err = d.cmd("images", "--format", "{{.Repository}}:{{.Tag}}").output(ctx, opts.Logger)
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	for _, ref := range strings.Fields(out) {
		if strings.HasPrefix(ref, buildRepo+"/") {
			removeImage(ctx, d, opts, ref, "build leftover")
		}
	}

	// Images of ours that are not current.
	out, err = d.cmd("images", "--filter", "label="+RecipeLabel, "--format", "{{.ID}} {{.Repository}}:{{.Tag}}").output(ctx, opts.Logger)
	if err != nil {
		return fmt.Errorf("list kubelab images: %w", err)
	}
	for _, line := range strings.Split(out, "\n") {
		id, ref, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if ref == "<none>:<none>" {
			removeImage(ctx, d, opts, id, "untagged older build")
			continue
		}
		info, found, err := d.inspectImage(ctx, ref)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		if want, ok := current[ref]; ok && info.Labels[RecipeLabel] == want {
			continue
		}
		removeImage(ctx, d, opts, ref, "not in the current recipe set")
	}

	return pruneCache(opts, cat)
}

// removeImage removes one image, reporting instead of failing when a
// container still uses it.
func removeImage(ctx context.Context, d *docker, opts Options, ref, why string) {
	if err := d.cmd("rmi", ref).run(ctx, opts.Logger); err != nil {
		fmt.Fprintf(opts.Log, "kept %s (%s): %v\n", ref, why, err)
		return
	}
	fmt.Fprintf(opts.Log, "removed image %s (%s)\n", ref, why)
}

// pruneCache removes cached root file systems and binaries of older
// recipes, and work directories of interrupted builds.
func pruneCache(opts Options, cat *catalog) error {
	keep := map[string]bool{}
	for name := range cat.rootfs {
		keep[filepath.Join("rootfs", name+"-"+cat.rootfsKey(name)+".tar")] = true
	}
	for name, spec := range cat.binaries {
		keep[filepath.Join("bin", name+"-"+cat.binaryKey(name))] = true
		switch spec.kind {
		case "go":
			keep[filepath.Join("go", wrapperDirName(spec))] = true
		case "go-local":
			keep[filepath.Join("go", "local-"+name)] = true
		}
	}
	for _, dir := range []string{"rootfs", "bin", "go", "work"} {
		entries, err := os.ReadDir(filepath.Join(opts.CacheDir, dir))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read cache: %w", err)
		}
		for _, e := range entries {
			rel := filepath.Join(dir, e.Name())
			if keep[rel] {
				continue
			}
			path := filepath.Join(opts.CacheDir, rel)
			if dir == "work" {
				removeTree(path)
			} else if err := os.RemoveAll(path); err != nil {
				return fmt.Errorf("remove %s: %w", path, err)
			}
			fmt.Fprintf(opts.Log, "removed cache file %s\n", path)
		}
	}
	return nil
}
