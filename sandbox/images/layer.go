package images

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// fixedTime is the modification time of every file added here, so that the
// same inputs give the same layer.
func fixedTime() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }

// cleanName turns a tar entry name ("./etc/", "etc/passwd") into a clean
// relative path ("etc", "etc/passwd"); the root is "".
func cleanName(name string) string {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	return name
}

// writeLayer writes d's file system to w as one tar stream: its root file
// system without the entries the overlays replace, then the overlays (with
// any missing parent directories).
func (b *builder) writeLayer(ctx context.Context, w io.Writer, d imageDef) error {
	tw := tar.NewWriter(w)
	replaced := map[string]bool{}
	for _, o := range d.overlays {
		replaced[cleanName(o.path)] = true
	}
	dirs := map[string]bool{"": true}
	if d.rootfs != "" {
		tarball, err := b.ensureRootfs(ctx, d.rootfs)
		if err != nil {
			return err
		}
		if err := copyTar(ctx, tw, tarball, func(name string, h *tar.Header) bool {
			if replaced[name] {
				return false
			}
			if h.Typeflag == tar.TypeDir {
				dirs[name] = true
			}
			return true
		}); err != nil {
			return err
		}
	}
	for _, o := range d.overlays {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := cleanName(o.path)
		var parents []string
		for p := path.Dir(name); p != "." && !dirs[p]; p = path.Dir(p) {
			parents = append(parents, p)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: parents[i] + "/", Mode: 0o755, ModTime: fixedTime()}); err != nil {
				return fmt.Errorf("write %s: %w", parents[i], err)
			}
			dirs[parents[i]] = true
		}
		if err := b.writeOverlay(ctx, tw, name, o); err != nil {
			return fmt.Errorf("add /%s: %w", name, err)
		}
		if o.dir {
			dirs[name] = true
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish layer: %w", err)
	}
	return nil
}

// copyTar copies the entries of tarball that keep accepts into tw.
func copyTar(ctx context.Context, tw *tar.Writer, tarball string, keep func(name string, h *tar.Header) bool) error {
	f, err := os.Open(tarball)
	if err != nil {
		return fmt.Errorf("open %s: %w", tarball, err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", tarball, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !keep(cleanName(h.Name), h) {
			continue
		}
		// let the writer pick the format; access and change times are noise
		h.Format, h.AccessTime, h.ChangeTime = tar.FormatUnknown, time.Time{}, time.Time{}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("copy %s from %s: %w", h.Name, tarball, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("copy %s from %s: %w", h.Name, tarball, err)
		}
	}
}

// readFromTar returns the content of the regular file name in tarball.
func readFromTar(tarball, name string) ([]byte, error) {
	f, err := os.Open(tarball)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", tarball, err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s has no file %s", tarball, name)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", tarball, err)
		}
		if cleanName(h.Name) != name {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%s in %s is not a regular file", name, tarball)
		}
		return io.ReadAll(tr)
	}
}

// writeOverlay writes one overlay entry.
func (b *builder) writeOverlay(ctx context.Context, tw *tar.Writer, name string, o overlay) error {
	h := &tar.Header{Name: name, Mode: o.mode, Uid: o.uid, Gid: o.gid, ModTime: fixedTime()}
	switch {
	case o.dir:
		h.Typeflag, h.Name = tar.TypeDir, name+"/"
		if h.Mode == 0 {
			h.Mode = 0o755
		}
		return tw.WriteHeader(h)
	case o.link != "":
		h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, o.link, 0o777
		return tw.WriteHeader(h)
	case o.binary != "":
		p, err := b.ensureBinary(ctx, o.binary)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("open %s: %w", p, err)
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		h.Typeflag, h.Size = tar.TypeReg, info.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	}
	var data []byte
	var err error
	switch {
	case o.embed != "":
		data, err = fs.ReadFile(embedded, o.embed)
	case o.from != "":
		spec, file, _ := strings.Cut(o.from, ":")
		var tarball string
		if tarball, err = b.ensureRootfs(ctx, spec); err == nil {
			data, err = readFromTar(tarball, file)
		}
	case o.gen == "kubectl-completion":
		data, err = b.kubectlCompletion(ctx)
	case o.module != "":
		data, err = b.moduleFile(ctx, o.module)
	case o.gen != "":
		err = fmt.Errorf("unknown generator %q", o.gen)
	default:
		data = []byte(o.data)
	}
	if err != nil {
		return err
	}
	h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err = tw.Write(data)
	return err
}

// instructions are the Dockerfile instructions (also accepted by docker
// import and docker commit, except STOPSIGNAL) that give an image cfg and
// labels.
func instructions(cfg config, labels map[string]string) []string {
	var out []string
	js := func(v []string) string { b, _ := json.Marshal(v); return string(b) }
	for _, e := range cfg.Env {
		out = append(out, "ENV "+e)
	}
	if len(cfg.Entrypoint) > 0 {
		out = append(out, "ENTRYPOINT "+js(cfg.Entrypoint))
	}
	if len(cfg.Cmd) > 0 {
		out = append(out, "CMD "+js(cfg.Cmd))
	}
	if cfg.User != "" {
		out = append(out, "USER "+cfg.User)
	}
	if cfg.WorkingDir != "" {
		out = append(out, "WORKDIR "+cfg.WorkingDir)
	}
	if len(cfg.Volumes) > 0 {
		out = append(out, "VOLUME "+js(cfg.Volumes))
	}
	for _, p := range cfg.Ports {
		out = append(out, "EXPOSE "+p)
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, "LABEL "+k+"="+strconv.Quote(labels[k]))
	}
	return out
}

// ociConfig is the image configuration of a docker-archive image.
func ociConfig(cfg config, diffID string) ([]byte, error) {
	type runConfig struct {
		Env          []string            `json:"Env,omitempty"`
		Entrypoint   []string            `json:"Entrypoint,omitempty"`
		Cmd          []string            `json:"Cmd,omitempty"`
		User         string              `json:"User,omitempty"`
		WorkingDir   string              `json:"WorkingDir,omitempty"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
		Volumes      map[string]struct{} `json:"Volumes,omitempty"`
		StopSignal   string              `json:"StopSignal,omitempty"`
	}
	rc := runConfig{Env: cfg.Env, Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, User: cfg.User, WorkingDir: cfg.WorkingDir, StopSignal: cfg.StopSignal}
	for _, p := range cfg.Ports {
		if rc.ExposedPorts == nil {
			rc.ExposedPorts = map[string]struct{}{}
		}
		rc.ExposedPorts[p] = struct{}{}
	}
	for _, v := range cfg.Volumes {
		if rc.Volumes == nil {
			rc.Volumes = map[string]struct{}{}
		}
		rc.Volumes[v] = struct{}{}
	}
	return json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      fixedTime().Format(time.RFC3339),
		"config":       rc,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + diffID}},
		"history":      []map[string]string{{"created": fixedTime().Format(time.RFC3339), "created_by": "kubelab images"}},
	})
}

// writeArchive writes defs as one "docker save" archive (each image one
// layer), the format "ctr images import" and "docker load" read.
func (b *builder) writeArchive(ctx context.Context, w io.Writer, defs []imageDef) error {
	tw := tar.NewWriter(w)
	type manifestEntry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []manifestEntry
	for _, d := range defs {
		tmp, err := os.CreateTemp(filepath.Join(b.opts.CacheDir, "work"), "layer-*.tar")
		if err != nil {
			return fmt.Errorf("make temporary layer: %w", err)
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		sum := sha256.New()
		if err := b.writeLayer(ctx, io.MultiWriter(tmp, sum), d); err != nil {
			return fmt.Errorf("layer of %s: %w", d.ref, err)
		}
		diffID := hex.EncodeToString(sum.Sum(nil))
		size, err := tmp.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("layer of %s: %w", d.ref, err)
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("layer of %s: %w", d.ref, err)
		}
		layerName := diffID + "/layer.tar"
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: diffID + "/", Mode: 0o755, ModTime: fixedTime()}); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: layerName, Mode: 0o644, Size: size, ModTime: fixedTime()}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tmp); err != nil {
			return fmt.Errorf("archive layer of %s: %w", d.ref, err)
		}
		cfg, err := ociConfig(d.config, diffID)
		if err != nil {
			return fmt.Errorf("config of %s: %w", d.ref, err)
		}
		cfgSum := sha256.Sum256(cfg)
		cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: cfgName, Mode: 0o644, Size: int64(len(cfg)), ModTime: fixedTime()}); err != nil {
			return err
		}
		if _, err := tw.Write(cfg); err != nil {
			return err
		}
		manifest = append(manifest, manifestEntry{Config: cfgName, RepoTags: []string{d.ref}, Layers: []string{layerName}})
		tmp.Close()
		os.Remove(tmp.Name())
	}
	m, err := json.Marshal(manifest)
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "manifest.json", Mode: 0o644, Size: int64(len(m)), ModTime: fixedTime()}); err != nil {
		return err
	}
	if _, err := tw.Write(m); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish archive: %w", err)
	}
	return nil
}
