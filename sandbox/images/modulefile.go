package images

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// moduleFile returns the content of a file that a Go module ships, named
// "module@version:path" (such as a CustomResourceDefinition under the
// module's manifests/), downloaded through the module proxy like the
// modules the binaries are built from.
func (b *builder) moduleFile(ctx context.Context, ref string) ([]byte, error) {
	id, file, err := splitModuleFile(ref)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.opts.CacheDir, "go")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", dir, err)
	}
	logFile := filepath.Join(b.opts.CacheDir, "logs", "module-files.log")
	out, err := command{name: b.opts.Go, args: []string{"mod", "download", "-json", id}, dir: dir, env: goEnv(), logFile: logFile}.output(ctx, b.log)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", id, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return nil, fmt.Errorf("download %s: decode go mod download output: %w", id, err)
	}
	if info.Error != "" {
		return nil, fmt.Errorf("download %s: %s", id, info.Error)
	}
	data, err := os.ReadFile(filepath.Join(info.Dir, filepath.FromSlash(file)))
	if err != nil {
		return nil, fmt.Errorf("file %s of module %s: %w", file, id, err)
	}
	return data, nil
}

// splitModuleFile cuts "module@version:path" into "module@version" and a
// clean relative path inside the module.
func splitModuleFile(ref string) (id, file string, err error) {
	id, file, ok := strings.Cut(ref, ":")
	mod, version, hasVersion := strings.Cut(id, "@")
	if !ok || !hasVersion || mod == "" || version == "" || file == "" {
		return "", "", fmt.Errorf("module file %q: want module@version:path", ref)
	}
	clean := path.Clean(file)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", "", fmt.Errorf("module file %q: the path must stay inside the module", ref)
	}
	return id, clean, nil
}
