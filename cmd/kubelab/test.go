package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"kubelab/lessons"
	"kubelab/sandbox"
	"kubelab/sandbox/kind"
	"kubelab/sandbox/shell"
	"kubelab/server/lessontest"
)

// testCmd is `kubelab test`: every selected lesson, in a fresh sandbox,
// must fail its checks before each step's solution and pass them after.
func testCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dirs stringList
	fs.Var(&dirs, "lessons", "a folder of tracks (or one track) to test instead of the built-in course; repeatable")
	jobs := fs.Int("j", 1, "lessons tested at once, each in its own sandbox")
	provider := fs.String("sandbox", "shell", "sandbox provider: shell (a host shell: runs shell and none lessons only) or kind (every lesson; needs Docker and the images of kubelab images build)")
	skip := fs.Bool("skip-unsupported", false, "do not fail on lessons the provider cannot run (they are listed as NOT RUN)")
	retries := fs.Int("retries", 0, "run a failed lesson again, in a fresh sandbox, up to this many times; every failed attempt is still printed")
	online := fs.Bool("online", false, "also test lessons marked requires: internet")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: kubelab test [flags] [TRACK | TRACK/SLUG ...]\n\nRuns each lesson's solutions in a fresh sandbox through a real terminal; every check must fail before and pass after. Exit 1 on any failure.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *jobs < 1 {
		fmt.Fprintln(stderr, "kubelab test: -j must be at least 1")
		return 2
	}
	sources, err := lessonSources(dirs, len(dirs) == 0)
	if err != nil {
		fmt.Fprintln(stderr, "kubelab test:", err)
		return 2
	}
	cat, err := lessons.LoadAll(ctx, sources, lessonOptions())
	if err != nil {
		fmt.Fprintln(stderr, "kubelab test: the lessons do not load:\n"+err.Error())
		return 1
	}
	selected, err := selectLessons(cat, fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "kubelab test:", err)
		return 2
	}

	var runner lessontest.Runner
	switch *provider {
	case "shell":
		homes, err := os.MkdirTemp("", "kubelab-test-")
		if err != nil {
			fmt.Fprintln(stderr, "kubelab test:", err)
			return 1
		}
		defer os.RemoveAll(homes)
		runner = lessontest.Runner{Provider: shell.New(homes, nil), Kind: sandbox.KindShell}
	case "kind":
		if err := dockerAnswers(ctx); err != nil {
			fmt.Fprintln(stderr, "kubelab test: --sandbox kind needs a Docker engine:", err)
			return 1
		}
		if missing := missingImages(ctx); len(missing) > 0 {
			fmt.Fprintf(stderr, "kubelab test: images missing: %s; run `kubelab images build`\n", strings.Join(missing, ", "))
			return 1
		}
		runner = lessontest.Runner{Provider: kind.New(kind.Options{}), Kind: sandbox.KindKubernetes}
	default:
		fmt.Fprintf(stderr, "kubelab test: --sandbox %q: want shell or kind\n", *provider)
		return 2
	}
	runner.Progress = &lockedWriter{w: stderr}

	var reports []lessontest.Report
	var excluded []string // lessons that need the internet, in an offline run
	var mu sync.Mutex
	sem := make(chan struct{}, *jobs)
	var wg sync.WaitGroup
	start := time.Now()
	for _, l := range selected {
		if slices.Contains(l.Requires, "internet") && !*online {
			excluded = append(excluded, l.ID())
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rep := runner.Run(ctx, l)
			for try := 0; try < *retries && !rep.OK() && rep.Skipped == "" && ctx.Err() == nil; try++ {
				next := runner.Run(ctx, l)
				next.Earlier = append(append(rep.Earlier, rep), next.Earlier...)
				rep = next
			}
			mu.Lock()
			reports = append(reports, rep)
			mu.Unlock()
		}()
	}
	wg.Wait()
	order := map[string]int{}
	for i, l := range selected {
		order[l.ID()] = i
	}
	slices.SortFunc(reports, func(a, b lessontest.Report) int { return order[a.Lesson] - order[b.Lesson] })

	failed, notRun, passed, steps := 0, 0, 0, 0
	for _, r := range reports {
		lessontest.WriteTable(stdout, r)
		steps += len(r.Steps)
		switch {
		case r.Skipped != "":
			notRun++
		case r.OK():
			passed++
		default:
			failed++
		}
	}
	for _, id := range excluded {
		fmt.Fprintf(stdout, "\n%s  (excluded: requires: internet; run with --online)\n", id)
	}
	fmt.Fprintf(stdout, "\nkubelab test: %d lessons passed, %d failed, %d not run, %d excluded (need the internet); %d steps; %.1fs\n", passed, failed, notRun, len(excluded), steps, time.Since(start).Seconds())
	if failed > 0 || (notRun > 0 && !*skip) {
		return 1
	}
	return 0
}

// selectLessons picks lessons by "track" or "track/slug"; none means all.
func selectLessons(cat *lessons.Catalog, args []string) ([]*lessons.Lesson, error) {
	var out []*lessons.Lesson
	if len(args) == 0 {
		for _, t := range cat.Tracks {
			out = append(out, t.Lessons...)
		}
		return out, nil
	}
	for _, a := range args {
		track, slug, hasSlug := strings.Cut(a, "/")
		t := cat.Track(track)
		if t == nil {
			return nil, fmt.Errorf("no track %q", track)
		}
		if !hasSlug {
			out = append(out, t.Lessons...)
			continue
		}
		l := cat.Lesson(track, slug)
		if l == nil {
			return nil, fmt.Errorf("no lesson %q", a)
		}
		out = append(out, l)
	}
	return out, nil
}

// lockedWriter serialises progress lines from parallel lessons.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
