package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"kubelab/checker"
	"kubelab/lessons"
)

// lintCmd validates lessons and prints every problem as file:line: message.
// With no DIR it checks the built-in course.
func lintCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: kubelab lint [DIR...]\n\nValidates lessons (a folder of tracks, or one track folder); prints every problem as file:line: message; exits 1 if there is any.")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sources, err := lessonSources(fs.Args(), fs.NArg() == 0)
	if err != nil {
		fmt.Fprintln(stderr, "kubelab lint:", err)
		return 2
	}
	cat, err := lessons.LoadAll(ctx, sources, lessonOptions())
	var list *lessons.ErrorList
	switch {
	case errors.As(err, &list):
		for _, p := range *list {
			fmt.Fprintln(stdout, p.String())
		}
		fmt.Fprintf(stderr, "kubelab lint: %d problem(s)\n", len(*list))
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "kubelab lint:", err)
		return 1
	}
	n, steps := 0, 0
	for _, t := range cat.Tracks {
		n += len(t.Lessons)
		for _, l := range t.Lessons {
			steps += len(l.Steps)
		}
	}
	fmt.Fprintf(stderr, "kubelab lint: %d tracks, %d lessons, %d steps: no problems\n", len(cat.Tracks), n, steps)
	return 0
}

// lessonOptions are the parser options every command uses: checks are
// compiled by the checker, so a malformed check fails at load time.
func lessonOptions() lessons.Options {
	return lessons.Options{CompileCheck: checker.Compile}
}

// lessonSources is the built-in course (when builtin) followed by each
// directory, so a directory's track overrides a built-in one of that name.
func lessonSources(dirs []string, builtin bool) ([]lessons.Source, error) {
	var sources []lessons.Source
	if builtin {
		sources = append(sources, lessons.Source{Name: "lessons/content/", FS: lessons.BuiltIn()})
	}
	for _, d := range dirs {
		src, err := lessons.DirSource(d)
		if err != nil {
			return nil, err
		}
		sources = append(sources, src)
	}
	return sources, nil
}
