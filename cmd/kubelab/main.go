// Command kubelab serves hands-on Docker, Kubernetes and Kubeflow lessons
// beside a real terminal, and holds the tools around them: lint, test,
// images and version. main only parses flags and wires packages together.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `kubelab: hands-on container courses beside a real terminal

Usage:
  kubelab serve   [flags]            serve the course (default)
  kubelab lint    [DIR...]           validate lessons; exit 1 on any problem
  kubelab test    [flags] [LESSON...] run lesson solutions and checks in real sandboxes
  kubelab images  build|list|prune   build the images sandboxes need, offline
  kubelab admin   create-user|revoke-sessions  manage accounts (for serve --auth local)
  kubelab version                    print the version

Run "kubelab <command> -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serveCmd(ctx, args, stdout, stderr)
	case "lint":
		return lintCmd(ctx, args, stdout, stderr)
	case "test":
		return testCmd(ctx, args, stdout, stderr)
	case "images":
		return imagesCmd(ctx, args, stdout, stderr)
	case "admin":
		return adminCmd(ctx, args, os.Stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "kubelab", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "kubelab: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
