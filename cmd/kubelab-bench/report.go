package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// report collects the figures of a run.
type report struct {
	started time.Time
	// The host's 1-minute load average when the run started and ended:
	// other work on the machine shows in the figures.
	loadStart, loadEnd string
	rows               []row
	skipped            []string
	notes              []string
}

// row is one figure beside its baseline.
type row struct {
	section, what string
	value, base   string
	ratio         string
	target        string
}

func (r *report) add(section, what, value, base, ratio, target string) {
	r.rows = append(r.rows, row{section, what, value, base, ratio, target})
}

func (r *report) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *report) notRun(section, why string) {
	r.skipped = append(r.skipped, fmt.Sprintf("%s: not run: %s", section, why))
}

func (r *report) markdown(machine, commit string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# kubelab performance\n\n")
	fmt.Fprintf(&b, "Measured %s on %s, commit %s, by `make bench` (`go run ./cmd/kubelab-bench`).\n", r.started.UTC().Format("2006-01-02 15:04 MST"), machine, commit)
	fmt.Fprintf(&b, "Host load (1-minute average) %s when the run started, %s when it ended.\n", r.loadStart, r.loadEnd)
	fmt.Fprintf(&b, "Each figure is beside a baseline measured in the same run; the ratio is what we track. Benchmarks print figures and never fail on a timing.\n\n")
	fmt.Fprintf(&b, "| section | measure | kubelab | baseline | ratio | target |\n|---|---|---|---|---|---|\n")
	for _, x := range r.rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", x.section, x.what, x.value, x.base, x.ratio, x.target)
	}
	if len(r.skipped) > 0 {
		fmt.Fprintf(&b, "\nParts that did not run:\n\n")
		for _, s := range r.skipped {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	if len(r.notes) > 0 {
		fmt.Fprintf(&b, "\nNotes:\n\n")
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	fmt.Fprintf(&b, "\nReproduce: `make bench` (all sections; the sandbox sections need a Docker engine and the images from `kubelab images build`), or `go run ./cmd/kubelab-bench -only echo` for one section.\n")
	return b.String()
}

// percentile of sorted durations, p in [0,100].
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / d.Seconds() / 1e6 }

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}
