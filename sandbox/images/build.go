package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"
)

// builder carries one Build call: options, the cache directory (locked),
// and what has been made so far.
type builder struct {
	opts   Options
	log    *slog.Logger
	cat    *catalog
	docker *docker
	lock   *os.File
	start  time.Time

	mirror   string            // resolved lazily
	rootfs   map[string]string // rootfs name -> tarball
	binaries map[string]string // binary name -> file
	modules  map[string]string // Go module@version -> wrapper module dir

	total, done int                  // progress counters
	started     map[string]time.Time // image name -> its first step's start
}

func newBuilder(ctx context.Context, opts Options, cat *catalog) (*builder, error) {
	for _, dir := range []string{"", "rootfs", "bin", "go", "debs", "work", "logs"} {
		if err := os.MkdirAll(filepath.Join(opts.CacheDir, dir), 0o755); err != nil {
			return nil, fmt.Errorf("create cache directory: %w", err)
		}
	}
	b := &builder{
		opts: opts, log: opts.Logger, cat: cat, docker: newDocker(opts), start: time.Now(),
		rootfs: map[string]string{}, binaries: map[string]string{}, modules: map[string]string{},
		started: map[string]time.Time{},
	}
	lock, err := lockCache(ctx, opts.CacheDir, opts.Log)
	if err != nil {
		return nil, err
	}
	b.lock = lock
	return b, nil
}

// lockCache takes an exclusive lock on the cache directory, so that two
// builds (or a build and a prune) on one host take turns instead of
// corrupting each other. Closing the file releases it.
func lockCache(ctx context.Context, dir string, log io.Writer) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache directory: %w", err)
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	waited := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !waited {
			fmt.Fprintf(log, "another image build holds %s; waiting\n", path)
			waited = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func (b *builder) close() {
	if b.lock != nil {
		b.lock.Close()
	}
}

// step is one unit of progress.
type step struct {
	image string // short name of the image it is for
	title string // "building kubelet"
	key   string // steps with the same key run once
	run   func(ctx context.Context) error
	skip  func() bool // when set and true at run time, the step is not needed
}

// build brings defs up to date, in order.
func (b *builder) build(ctx context.Context, defs []imageDef) ([]Result, error) {
	type job struct {
		def    imageDef
		recipe string
		pull   bool // try the published image; after the pull step: it worked
	}
	var jobs []job
	var results []Result
	var cached []Result
	for _, d := range defs {
		t0 := time.Now()
		recipe := b.cat.recipe(d)
		info, found, err := b.docker.inspectImage(ctx, d.ref)
		if err != nil {
			return results, err
		}
		if found && info.Labels[RecipeLabel] == recipe {
			cached = append(cached, Result{Image: d.ref, Status: StatusCached, Recipe: recipe, Size: info.Size, Duration: time.Since(t0)})
			continue
		}
		jobs = append(jobs, job{def: d, recipe: recipe})
	}
	results = append(results, cached...)
	for _, r := range cached {
		fmt.Fprintf(b.opts.Log, "%s: up to date (recipe %s)\n", r.Image, r.Recipe[:12])
	}
	if len(jobs) == 0 {
		return results, nil
	}

	// Published images first, when a registry answers.
	if pullable := b.pullCandidates(ctx, func() []imageDef {
		var ds []imageDef
		for _, j := range jobs {
			ds = append(ds, j.def)
		}
		return ds
	}()); len(pullable) > 0 {
		for i := range jobs {
			if pullable[jobs[i].def.name] {
				jobs[i].pull = true
			}
		}
	}

	// Plan the steps of everything left, shared steps once.
	var plan []step
	seen := map[string]bool{}
	add := func(s step) {
		if s.key != "" && seen[s.key] {
			return
		}
		seen[s.key] = true
		plan = append(plan, s)
	}
	for i := range jobs {
		j := &jobs[i]
		if j.pull {
			add(step{image: j.def.name, title: "pulling " + j.def.published, key: "pull:" + j.def.name, run: func(ctx context.Context) error {
				err := b.pull(ctx, j.def, j.recipe)
				if err != nil {
					fmt.Fprintf(b.opts.Log, "%s: pulling %s failed (%v); building instead\n", j.def.name, j.def.published, err)
				}
				j.pull = err == nil
				return nil
			}})
		}
		for _, s := range b.stepsFor(j.def, j.recipe, func() bool { return j.pull }) {
			add(s)
		}
	}
	b.total = len(plan)
	for _, s := range plan {
		if err := b.runStep(ctx, s); err != nil {
			return results, fmt.Errorf("%s: %s: %w", s.image, s.title, err)
		}
		// an image is done when its last step ran, or its pull worked
		for _, j := range jobs {
			if (s.key == "image:"+j.def.name && !j.pull) || (s.key == "pull:"+j.def.name && j.pull) {
				info, found, err := b.docker.inspectImage(ctx, j.def.ref)
				if err != nil {
					return results, err
				}
				if !found {
					return results, fmt.Errorf("%s: the build finished but docker has no %s", j.def.name, j.def.ref)
				}
				if err := recordBuilt(b.opts.CacheDir, info.ID, j.def.ref); err != nil {
					return results, err
				}
				status := StatusBuilt
				if j.pull {
					status = StatusPulled
				}
				results = append(results, Result{Image: j.def.ref, Status: status, Recipe: j.recipe, Size: info.Size, Duration: time.Since(b.stepStart(j.def.name))})
			}
		}
	}
	return results, nil
}

// stepStart returns when the first step of image name started.
func (b *builder) stepStart(name string) time.Time {
	if t, ok := b.started[name]; ok {
		return t
	}
	return b.start
}

// stepsFor lists the steps that make d. skip reports (at run time) whether
// a pull made the image already.
func (b *builder) stepsFor(d imageDef, recipe string, skip func() bool) []step {
	var steps []step
	for _, name := range b.cat.rootfsNames(d) {
		name := name
		if b.rootfsCached(name) {
			continue
		}
		steps = append(steps, step{image: d.name, title: "Debian root file system " + name, key: "rootfs:" + name, skip: skip,
			run: func(ctx context.Context) error { _, err := b.ensureRootfs(ctx, name); return err }})
	}
	for _, name := range b.cat.binaryNames(d) {
		name := name
		spec := b.cat.binaries[name]
		if b.binaryCached(name) {
			continue
		}
		if spec.kind == "go" {
			mod := spec.module + "@" + spec.version
			steps = append(steps, step{image: d.name, title: "fetching Go modules of " + mod, key: "module:" + mod, skip: skip,
				run: func(ctx context.Context) error { _, err := b.ensureModule(ctx, spec); return err }})
		}
		steps = append(steps, step{image: d.name, title: "building " + name, key: "binary:" + name, skip: skip,
			run: func(ctx context.Context) error { _, err := b.ensureBinary(ctx, name); return err }})
	}
	steps = append(steps, step{image: d.name, title: "assembling " + d.ref, key: "image:" + d.name, skip: skip,
		run: func(ctx context.Context) error { return b.assemble(ctx, d, recipe) }})
	return steps
}

// rootfsCached reports whether root file system name is in the cache.
func (b *builder) rootfsCached(name string) bool {
	_, err := os.Stat(b.rootfsPath(name))
	return err == nil
}

// binaryCached reports whether binary name is in the cache.
func (b *builder) binaryCached(name string) bool {
	_, err := os.Stat(b.binaryPath(name))
	return err == nil
}

// runStep runs one step, printing a progress line when it starts and
// another every 30 seconds while it runs.
func (b *builder) runStep(ctx context.Context, s step) error {
	b.done++
	if s.skip != nil && s.skip() {
		return nil
	}
	if _, ok := b.started[s.image]; !ok {
		b.started[s.image] = time.Now()
	}
	prefix := fmt.Sprintf("[%d/%d] %s: %s", b.done, b.total, s.image, s.title)
	fmt.Fprintf(b.opts.Log, "%s (%s elapsed)\n", prefix, b.elapsed())
	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(b.opts.Log, "%s ... still running (%s elapsed)\n", prefix, b.elapsed())
			}
		}
	}()
	t0 := time.Now()
	err := s.run(ctx)
	close(stop)
	<-ticked
	b.log.Debug("step done", "image", s.image, "step", s.title, "seconds", time.Since(t0).Seconds(), "err", err)
	return err
}

func (b *builder) elapsed() string {
	return time.Since(b.start).Truncate(time.Second).String()
}

// WriteResults prints a summary table of Build's results.
func WriteResults(w io.Writer, results []Result) {
	if len(results) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tSTATUS\tSIZE\tSECONDS")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\n", r.Image, r.Status, humanSize(r.Size), r.Duration.Seconds())
	}
	tw.Flush()
}

// WriteStatuses prints List's statuses as a table.
func WriteStatuses(w io.Writer, statuses []Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIMAGE\tSTATE\tSOURCE\tSIZE\tCREATED")
	for _, s := range statuses {
		state, created, size, source := "missing", "-", "-", "-"
		if s.Present {
			state = "outdated"
			if s.Current {
				state = "current"
			}
			created = s.Created.Local().Format("2006-01-02 15:04")
			size = humanSize(s.Size)
			if s.Source != "" {
				source = s.Source
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Image, state, source, size, created)
	}
	tw.Flush()
}

// humanSize formats bytes the way docker does (decimal units).
func humanSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fGB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fMB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fkB", float64(n)/1e3)
	default:
		return fmt.Sprintf("%dB", n)
	}
}
