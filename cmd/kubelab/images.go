package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"kubelab/sandbox/images"
)

const imagesUsage = `Usage: kubelab images build [flags] [IMAGE...]
       kubelab images list  [flags]
       kubelab images prune [flags]

build   makes sure the sandbox images are on this host and current, building
        what is missing without a registry (Debian packages, Go modules).
        IMAGE is a short name (%s, hello)
        or a full reference; none means all.
list    shows each image: current, outdated or missing.
prune   removes older builds, build leftovers and unused cache files.

Flags:
`

// imagesCmd runs "kubelab images build|list|prune".
func imagesCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	usage := func(w io.Writer, fs *flag.FlagSet) {
		fmt.Fprintf(w, imagesUsage, strings.Join(images.Names(), ", "))
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fs := flag.NewFlagSet("kubelab images", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cache := fs.String("cache", images.DefaultCacheDir(), "cache `dir`ectory for root file systems, binaries and Go wrapper modules")
	dockerBin := fs.String("docker", "docker", "docker CLI `command`")
	goBin := fs.String("go", "go", "go `command`")
	mirror := fs.String("mirror", "", "Debian mirror `URL` (default: the one this host's apt uses)")
	pull := fs.Bool("pull", false, "try published images (kindest/node) first, without probing the registry")
	offline := fs.Bool("offline", false, "never try a registry")
	verbose := fs.Bool("v", false, "log every command run, to stderr")

	if len(args) == 0 {
		usage(stderr, fs)
		return 2
	}
	sub := args[0]
	if sub == "-h" || sub == "--help" || sub == "help" {
		usage(stdout, fs)
		return 0
	}
	names, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout, fs)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "kubelab images: %v\n\n", err)
		usage(stderr, fs)
		return 2
	}
	if *pull && *offline {
		fmt.Fprintln(stderr, "kubelab images: -pull and -offline exclude each other")
		return 2
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts := images.Options{
		CacheDir: *cache,
		Docker:   *dockerBin,
		Go:       *goBin,
		Mirror:   *mirror,
		Log:      stdout,
		Logger:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	switch {
	case *pull:
		opts.Pull = images.PullAlways
	case *offline:
		opts.Pull = images.PullNever
	}

	switch sub {
	case "build":
		if _, err := images.Build(ctx, opts, names...); err != nil {
			fmt.Fprintf(stderr, "kubelab images build: %v\n", err)
			return 1
		}
		return 0
	case "list":
		if len(names) > 0 {
			fmt.Fprintf(stderr, "kubelab images list: takes no arguments, got %q\n", names)
			return 2
		}
		statuses, err := images.List(ctx, opts)
		if err != nil {
			fmt.Fprintf(stderr, "kubelab images list: %v\n", err)
			return 1
		}
		images.WriteStatuses(stdout, statuses)
		return 0
	case "prune":
		if len(names) > 0 {
			fmt.Fprintf(stderr, "kubelab images prune: takes no arguments, got %q\n", names)
			return 2
		}
		if err := images.Prune(ctx, opts); err != nil {
			fmt.Fprintf(stderr, "kubelab images prune: %v\n", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(stderr, "kubelab images: unknown command %q\n\n", sub)
		usage(stderr, fs)
		return 2
	}
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
