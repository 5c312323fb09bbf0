package lessons

import (
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Addons a lesson may list under addons: components installed into the
// learner's cluster before the lesson starts.
var knownAddons = []string{"kubeflow-training"}

// Resources is what a lesson needs of its cluster in all (system pods,
// addons and its own workloads), from front matter resources:
// {memory: 3Gi, cpus: 2}. A zero field asks nothing.
type Resources struct {
	Memory int64   // bytes
	CPUs   float64 // cores
}

// decodeAddons reads addons: a list of known addons, for a lesson with a
// cluster.
func decodeAddons(keys map[string]entry, l *Lesson, r *yamlReader) {
	e, ok := keys["addons"]
	if !ok {
		return
	}
	l.Addons, _ = r.list(e)
	for _, a := range l.Addons {
		if !contains(knownAddons, a) {
			r.add(e.line, "addons: unknown addon %q: want %s", a, strings.Join(knownAddons, ", "))
		}
	}
	if len(l.Addons) > 0 && l.Sandbox != "" && l.Sandbox != SandboxKubernetes {
		r.add(e.line, "addons: only a lesson with sandbox kubernetes has a cluster to install addons into")
	}
}

// decodeResources reads resources: a mapping with memory (a size such as
// 512Mi or 3Gi) and cpus (cores, such as 2 or 1.5).
func decodeResources(keys map[string]entry, l *Lesson, r *yamlReader) {
	e, ok := keys["resources"]
	if !ok || isNull(e.val) {
		return
	}
	if e.val.Kind != yaml.MappingNode {
		r.add(e.line, "resources: want keys such as {memory: 2Gi, cpus: 2}, got %s", describe(e.val))
		return
	}
	if l.Sandbox != "" && l.Sandbox != SandboxKubernetes {
		r.add(e.line, "resources: only a lesson with sandbox kubernetes has a cluster to size")
	}
	sub := r.entries(e.val, []string{"memory", "cpus"}, nil)
	if m, ok := sub["memory"]; ok {
		if s, ok := r.text(m); ok {
			n, msg := parseSize(strings.TrimSpace(s))
			if msg != "" {
				r.add(m.line, "resources: memory %q: %s", s, msg)
			}
			l.Resources.Memory = n
		}
	}
	if c, ok := sub["cpus"]; ok {
		if s, ok := r.text(c); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				r.add(c.line, "resources: cpus %q: want a number of cores above zero, such as 2 or 1.5", s)
			} else {
				l.Resources.CPUs = f
			}
		}
	}
}

// parseSize reads a Kubernetes quantity of bytes (512Mi, 3Gi, 2G, or a
// number). It returns a message when s is not one, or not above zero.
func parseSize(s string) (int64, string) {
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() <= 0 || q.CmpInt64(1<<50) > 0 {
		return 0, "want a size such as 512Mi or 3Gi"
	}
	return q.Value(), ""
}
