package kind

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
	"os"
	"strconv"
	"strings"
)

// ParseLimits reads limits written as comma-separated key=value pairs:
// memory (bytes, or with a suffix Ki, Mi, Gi), cpus (cores, may be
// fractional) and pids, such as "memory=1Gi,cpus=1.5,pids=1024". A key
// left out keeps its default; -1 sets no limit. It is the syntax of the
// serve flags --workstation-limits, --engine-limits and --node-limits.
func ParseLimits(s string) (Limits, error) {
	var l Limits
	if strings.TrimSpace(s) == "" {
		return l, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || v == "" {
			return Limits{}, fmt.Errorf("limits %q: %q is not key=value (keys: memory, cpus, pids)", s, kv)
		}
		switch k {
		case "memory":
			n, err := parseBytes(v)
			if err != nil {
				return Limits{}, fmt.Errorf("limits %q: memory: %w", s, err)
			}
			l.Memory = n
		case "cpus":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || (f <= 0 && f != -1) {
				return Limits{}, fmt.Errorf("limits %q: cpus %q: want a positive number of cores, or -1", s, v)
			}
			l.CPUs = f
		case "pids":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || (n <= 0 && n != -1) {
				return Limits{}, fmt.Errorf("limits %q: pids %q: want a positive count, or -1", s, v)
			}
			l.PIDs = n
		default:
			return Limits{}, fmt.Errorf("limits %q: unknown key %q (keys: memory, cpus, pids)", s, k)
		}
	}
	return l, nil
}

// parseBytes reads a Kubernetes quantity of bytes (512Mi, 2Gi, 65536Ki,
// 2G or a number); -1 is no limit.
func parseBytes(v string) (int64, error) {
	if v == "-1" {
		return -1, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil || q.Sign() <= 0 {
		return 0, fmt.Errorf("%q: want a size such as 512Mi or 2Gi, or -1", v)
	}
	if q.CmpInt64(1<<62) > 0 {
		return 0, fmt.Errorf("%q: too large", v)
	}
	n := q.Value()
	if n < 6<<20 {
		return 0, fmt.Errorf("%q: Docker needs at least 6Mi", v)
	}
	return n, nil
}

// String writes l in ParseLimits's syntax.
func (l Limits) String() string {
	var parts []string
	if l.Memory != 0 {
		parts = append(parts, "memory="+strconv.FormatInt(l.Memory, 10))
	}
	if l.CPUs != 0 {
		parts = append(parts, "cpus="+strconv.FormatFloat(l.CPUs, 'f', -1, 64))
	}
	if l.PIDs != 0 {
		parts = append(parts, "pids="+strconv.FormatInt(l.PIDs, 10))
	}
	return strings.Join(parts, ",")
}

// hostMemory is the host's total memory in bytes from /proc/meminfo, or
// 0 when it cannot be read.
func hostMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kib, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kib << 10
				}
			}
		}
	}
	return 0
}

// sizedMemory is a default memory limit sized from the host: an eighth of
// its memory, at least min and at most max (max when the host's memory is
// unknown).
func sizedMemory(host, lo, hi int64) int64 {
	if host <= 0 {
		return hi
	}
	return min(max(host/8, lo), hi)
}
