package sandbox

import (
	"fmt"
	"strconv"
	"strings"
)

// Fit returns nil when need fits in have, and otherwise an error wrapping
// ErrUnsupported whose message says, in a sentence a learner can read on
// the lesson's page, what the lesson needs and what this server gives. A
// zero or negative field of need asks for nothing; one of have is not
// known (no limit) and fits anything.
//
// A provider calls it with what it gives a sandbox's cluster before it
// builds or grows one (the kind provider: its node limits times the
// number of nodes, capped by the host's memory and CPUs), so that a lesson
// that cannot run is refused at once instead of failing half-way.
func Fit(need, have Resources) error {
	var short []string
	if need.Memory > 0 && have.Memory > 0 && need.Memory > have.Memory {
		short = append(short, fmt.Sprintf("%s of memory (it has %s)", FormatBytes(need.Memory), FormatBytes(have.Memory)))
	}
	if need.CPUs > 0 && have.CPUs > 0 && need.CPUs > have.CPUs {
		short = append(short, fmt.Sprintf("%s CPUs (it has %s)", formatCPUs(need.CPUs), formatCPUs(have.CPUs)))
	}
	if len(short) == 0 {
		return nil
	}
	return fmt.Errorf("this lesson's cluster needs %s; the server's administrator can give clusters more (kubelab serve --node-limits): %w",
		strings.Join(short, " and "), ErrUnsupported)
}

// FormatBytes writes n bytes the way Kubernetes quantities read: 3Gi,
// 1.5Gi (to a tenth), 512Mi.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return strings.TrimSuffix(strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64), ".0") + "Gi"
	case n >= 1<<20:
		return strconv.FormatInt(n>>20, 10) + "Mi"
	default:
		return strconv.FormatInt(n, 10) + " bytes"
	}
}

func formatCPUs(c float64) string { return strconv.FormatFloat(c, 'f', -1, 64) }
