// Command kubelab-bench measures what learners feel, each figure beside a
// baseline measured in the same run: terminal throughput and echo latency
// against a bare PTY, many terminals at once, page serving, and (when a
// Docker engine and the kind provider are there) sandboxes and checks. It
// prints one Markdown report and writes it to -out. It never fails on a
// timing: figures are for reading, targets are printed beside them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the command line chooses.
type config struct {
	out        string
	kubelab    string // path of a built kubelab binary for the concurrency test
	throughput int64  // bytes the throughput command writes
	keystrokes int
	terminals  []int
	pageReqs   int
	only       string
	heapDir    string    // save the server's heap profile per concurrency run here
	sbRuns     int       // repeated runs per sandbox figure
	progress   io.Writer // long sections say what they are doing here
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kubelab-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := config{progress: stderr}
	var terms string
	fs.StringVar(&c.out, "out", "docs/performance.md", "write the report here too (\"\" for stdout only)")
	fs.StringVar(&c.kubelab, "kubelab", "bin/kubelab", "the kubelab binary the concurrency section starts as a server")
	fs.Int64Var(&c.throughput, "bytes", 200<<20, "bytes the throughput command produces before base64")
	fs.IntVar(&c.keystrokes, "keystrokes", 2000, "keystrokes for the echo latency")
	fs.StringVar(&terms, "terminals", "100,500,1000", "terminal counts for the concurrency section")
	fs.IntVar(&c.pageReqs, "requests", 2000, "requests per page in the pages section")
	fs.StringVar(&c.heapDir, "heap-profiles", "", "save the server's heap profile at each concurrency level into this folder (for pprof)")
	fs.IntVar(&c.sbRuns, "sandbox-runs", 5, "repeated runs per figure in the sandboxes section (a kind cluster takes 15-30 s)")
	fs.StringVar(&c.only, "only", "", "run only sections whose name contains this (throughput, echo, concurrency, pages, sandboxes, checks)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (its in-process servers included) to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "kubelab-bench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "kubelab-bench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	for _, s := range strings.Split(terms, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n <= 0 {
			fmt.Fprintf(stderr, "kubelab-bench: -terminals: bad count %q\n", s)
			return 2
		}
		c.terminals = append(c.terminals, n)
	}
	if c.sbRuns < 1 {
		fmt.Fprintf(stderr, "kubelab-bench: -sandbox-runs: %d, want at least 1\n", c.sbRuns)
		return 2
	}

	r := &report{started: time.Now(), loadStart: loadAverage()}
	sections := []struct {
		name string
		fn   func(context.Context, config, *report) error
	}{
		{"throughput", benchThroughput},
		{"echo", benchEcho},
		{"concurrency", benchConcurrency},
		{"pages", benchPages},
		{"sandboxes", benchSandboxes},
		{"checks", benchChecks},
	}
	for _, s := range sections {
		if c.only != "" && !strings.Contains(s.name, c.only) {
			continue
		}
		fmt.Fprintf(stderr, "==> %s\n", s.name)
		start := time.Now()
		if err := s.fn(ctx, c, r); err != nil {
			r.notRun(s.name, err.Error())
			fmt.Fprintf(stderr, "==> %s: not run: %v\n", s.name, err)
			continue
		}
		fmt.Fprintf(stderr, "==> %s: done in %.1fs\n", s.name, time.Since(start).Seconds())
	}
	r.loadEnd = loadAverage()
	md := r.markdown(machine(), commit())
	fmt.Fprint(stdout, md)
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(md), 0o644); err != nil {
			fmt.Fprintln(stderr, "kubelab-bench:", err)
			return 1
		}
		fmt.Fprintf(stderr, "kubelab-bench: report written to %s\n", c.out)
	}
	return 0
}

// machine describes where the figures were taken.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				model = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%d cores (%s)%s, %s/%s, %s", runtime.NumCPU(), model, mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// loadAverage is the host's 1-minute load average as /proc/loadavg gives
// it, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func commit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
