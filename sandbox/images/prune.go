package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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

	// Tags in our repositories that are not current. Only our repositories:
	// images other people build FROM ours inherit our labels.
	ours := map[string]bool{}
	for ref := range current {
		ours[repository(ref)] = true
	}
	out, err = d.cmd("images", "--format", "{{.Repository}}:{{.Tag}}").output(ctx, opts.Logger)
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	for _, ref := range strings.Fields(out) {
		if !ours[repository(ref)] {
			continue
		}
		info, found, err := d.inspectImage(ctx, ref)
		if err != nil {
			return err
		}
		if found && info.Labels[RecipeLabel] != current[ref] {
			removeImage(ctx, d, opts, ref, "not in the current recipe set")
		}
	}

	// Untagged images this package built (a rebuild moved the tag away).
	ledger := readLedger(opts.CacheDir)
	out, err = d.cmd("images", "--quiet", "--no-trunc", "--filter", "dangling=true").output(ctx, opts.Logger)
	if err != nil {
		return fmt.Errorf("list untagged images: %w", err)
	}
	for _, id := range strings.Fields(out) {
		if ref, ok := ledger[id]; ok {
			removeImage(ctx, d, opts, id, "older build of "+ref)
		}
	}
	if err := pruneLedger(ctx, d, opts); err != nil {
		return err
	}

	return pruneCache(ctx, opts, cat)
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
func pruneCache(ctx context.Context, opts Options, cat *catalog) error {
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
			if err := ctx.Err(); err != nil {
				return err
			}
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

// repository is ref without its tag.
func repository(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}

// The ledger (<cache>/built-images) lists the images this package made, one
// "ID reference" line each, so that Prune removes only those.
const ledgerFile = "built-images"

// recordBuilt adds an image to the ledger.
func recordBuilt(cacheDir, id, ref string) error {
	f, err := os.OpenFile(filepath.Join(cacheDir, ledgerFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s %s\n", id, ref); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	return nil
}

// readLedger maps image IDs to the reference they were built as.
func readLedger(cacheDir string) map[string]string {
	data, _ := os.ReadFile(filepath.Join(cacheDir, ledgerFile))
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if id, ref, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			out[id] = ref
		}
	}
	return out
}

// pruneLedger drops entries of images that are gone.
func pruneLedger(ctx context.Context, d *docker, opts Options) error {
	ledger := readLedger(opts.CacheDir)
	var keep []string
	for id, ref := range ledger {
		if _, found, err := d.inspectImage(ctx, id); err != nil {
			return err
		} else if found {
			keep = append(keep, id+" "+ref+"\n")
		}
	}
	sort.Strings(keep)
	path := filepath.Join(opts.CacheDir, ledgerFile)
	if err := os.WriteFile(path, []byte(strings.Join(keep, "")), 0o644); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	return nil
}
