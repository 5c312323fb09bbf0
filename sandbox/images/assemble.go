package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// labelsFor are the labels of an image made from recipe.
func labelsFor(d imageDef, recipe, source string) map[string]string {
	return map[string]string{RecipeLabel: recipe, ImageLabel: d.name, SourceLabel: source}
}

// assemble makes image d from its parts, which the earlier steps made.
// A plain image is one "docker import" of its layer. An image with images
// inside its containerd (the node) is imported, started with containerd to
// import those, committed, and finished by a Dockerfile build (the only way
// to set STOPSIGNAL without a registry).
func (b *builder) assemble(ctx context.Context, d imageDef, recipe string) error {
	instr := instructions(d.config, labelsFor(d, recipe, "built"))
	if len(d.containerd) == 0 && d.config.StopSignal == "" {
		return b.importImage(ctx, d, d.ref, instr)
	}
	short := recipe[:12]
	base := buildRepo + "/" + d.name + ":" + short
	committed := buildRepo + "/" + d.name + "-committed:" + short
	container := buildContainerPrefix + d.name + "-" + short
	defer func() {
		// clean up even when ctx was cancelled
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		b.docker.cmd("rm", "-f", "-v", container).run(cleanup, b.log)
		b.docker.cmd("rmi", base, committed).run(cleanup, b.log)
	}()
	if err := b.importImage(ctx, d, base, nil); err != nil {
		return err
	}
	from := base
	if len(d.containerd) > 0 {
		if err := b.fillContainerd(ctx, d, base, container); err != nil {
			return err
		}
		if err := b.docker.cmd("commit", container, committed).run(ctx, b.log); err != nil {
			return fmt.Errorf("commit %s: %w", container, err)
		}
		from = committed
	}
	dockerfile := "FROM " + from + "\n" + strings.Join(instr, "\n") + "\n"
	if d.config.StopSignal != "" {
		dockerfile += "STOPSIGNAL " + d.config.StopSignal + "\n"
	}
	return b.dockerBuild(ctx, d.ref, dockerfile)
}

// Names of intermediate images and containers; Prune removes leftovers.
const (
	buildRepo            = "kubelab-build"
	buildContainerPrefix = "kubelab-build-"
)

// importImage packs d's layer into image ref with docker import.
func (b *builder) importImage(ctx context.Context, d imageDef, ref string, instr []string) error {
	args := []string{"import"}
	for _, in := range instr {
		args = append(args, "--change", in)
	}
	args = append(args, "-", ref)
	err := pipeInto(ctx, b.docker.cmd(args...), b.log, func(w io.Writer) error { return b.writeLayer(ctx, w, d) })
	var werr *writerError
	if errors.As(err, &werr) {
		// docker may have imported the stream up to the failure as a
		// complete image: do not leave it behind under a good label
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		b.docker.cmd("rmi", ref).run(cleanup, b.log)
	}
	if err != nil {
		return fmt.Errorf("import %s: %w", ref, err)
	}
	return nil
}

// writerError is a failure of what pipeInto fed a command.
type writerError struct{ err error }

func (e *writerError) Error() string { return e.err.Error() }
func (e *writerError) Unwrap() error { return e.err }

// pipeInto runs c with write's output as its standard input. A failure of
// write is reported before the command's (which then only saw a short
// stream), as a *writerError.
func pipeInto(ctx context.Context, c command, log *slog.Logger, write func(io.Writer) error) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	c.stdin = pr
	err := c.run(ctx, log)
	pr.CloseWithError(io.ErrClosedPipe) // stop the writer if the command gave up early
	if werr := <-done; werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		return &writerError{werr}
	}
	return err
}

// fillContainerd starts image base with containerd as its only process and
// imports d.containerd into containerd's k8s.io namespace, unpacked later
// by the node's containerd when a pod first needs them.
func (b *builder) fillContainerd(ctx context.Context, d imageDef, base, container string) error {
	b.docker.cmd("rm", "-f", "-v", container).run(ctx, b.log)
	run := b.docker.cmd("run", "-d", "--name", container, "--privileged", "--network", "none", "--tmpfs", "/run", "--tmpfs", "/tmp",
		"--entrypoint", "/usr/bin/containerd", base)
	if err := run.run(ctx, b.log); err != nil {
		return fmt.Errorf("start containerd in %s: %w", container, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := b.docker.cmd("exec", container, "ctr", "version").run(ctx, b.log)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := b.docker.cmd("logs", "--tail", "20", container).output(ctx, b.log)
			return fmt.Errorf("containerd in %s did not answer within 60s: %w; its log: %s", container, err, logs)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	imp := b.docker.cmd("exec", "-i", container, "ctr", "--namespace=k8s.io", "images", "import", "--all-platforms", "--no-unpack", "--digests", "-")
	err := pipeInto(ctx, imp, b.log, func(w io.Writer) error { return b.writeArchive(ctx, w, d.containerd) })
	if err != nil {
		return fmt.Errorf("import images into containerd: %w", err)
	}
	out, err := b.docker.cmd("exec", container, "ctr", "--namespace=k8s.io", "images", "list", "--quiet").output(ctx, b.log)
	if err != nil {
		return fmt.Errorf("list containerd images: %w", err)
	}
	have := strings.Fields(out)
	for _, sub := range d.containerd {
		if !slices.Contains(have, sub.ref) {
			return fmt.Errorf("containerd in %s lacks %s after the import (has: %s)", container, sub.ref, strings.Join(have, ", "))
		}
	}
	if err := b.docker.cmd("stop", "--time", "30", container).run(ctx, b.log); err != nil {
		return fmt.Errorf("stop %s: %w", container, err)
	}
	return nil
}

// dockerBuild builds image ref from a Dockerfile with no context, with the
// classic builder: it never looks for the base image in a registry.
func (b *builder) dockerBuild(ctx context.Context, ref, dockerfile string) error {
	c := b.docker.cmd("build", "--quiet", "--tag", ref, "-")
	c.env = []string{"DOCKER_BUILDKIT=0"}
	c.stdin = strings.NewReader(dockerfile)
	if err := c.run(ctx, b.log); err != nil {
		return fmt.Errorf("build %s: %w", ref, err)
	}
	return nil
}

// pullCandidates returns the names of defs to try pulling, by policy: a
// quick probe decides under PullAuto.
func (b *builder) pullCandidates(ctx context.Context, defs []imageDef) map[string]bool {
	var names []string
	for _, d := range defs {
		if d.published != "" {
			names = append(names, d.name)
		}
	}
	if len(names) == 0 || b.opts.Pull == PullNever {
		return nil
	}
	if b.opts.Pull == PullAuto {
		if err := probeRegistry(ctx, b.opts.Registry); err != nil {
			fmt.Fprintf(b.opts.Log, "registry %s does not answer (%v): building locally\n", b.opts.Registry, err)
			return nil
		}
		fmt.Fprintf(b.opts.Log, "registry %s answers: trying published images first\n", b.opts.Registry)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

// probeRegistry reports whether url answers HTTP within three seconds; any
// status counts (a registry answers /v2/ with 401).
func probeRegistry(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// pull makes d from its published image, labelled like a build of recipe.
func (b *builder) pull(ctx context.Context, d imageDef, recipe string) error {
	pctx, cancel := context.WithTimeout(ctx, b.opts.PullTimeout)
	defer cancel()
	if err := b.docker.cmd("pull", "--quiet", d.published).run(pctx, b.log); err != nil {
		return fmt.Errorf("pull %s: %w", d.published, err)
	}
	labels := labelsFor(d, recipe, d.published)
	var lines []string
	for _, in := range instructions(config{}, labels) {
		lines = append(lines, in)
	}
	return b.dockerBuild(ctx, d.ref, "FROM "+d.published+"\n"+strings.Join(lines, "\n")+"\n")
}
