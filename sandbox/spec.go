package sandbox

import (
	"fmt"
	"slices"

	"kubelab/lessons"
)

// String returns the name a lesson's front matter uses for k.
func (k Kind) String() string {
	switch k {
	case 0:
		return "none"
	case KindShell:
		return "shell"
	case KindDocker:
		return "docker"
	case KindKubernetes:
		return "kubernetes"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// ForLesson is the sandbox lesson l needs, for owner: its kind, the
// images it preloads, its workers, addons and resources.
func ForLesson(owner string, l *lessons.Lesson) Spec {
	return Spec{
		Owner: owner, Kind: KindFor(string(l.Sandbox)), Images: l.Images, Workers: l.Workers, Addons: l.Addons,
		Resources: Resources{Memory: l.Resources.Memory, CPUs: l.Resources.CPUs},
	}
}

// Covers reports whether a sandbox built to s also satisfies need: at least
// the same kind, at least as many workers, every image need preloads,
// every addon need installs, and at least the resources need asks for (a
// sandbox checked for less must be checked again). Owners are not
// compared.
func (s Spec) Covers(need Spec) bool {
	if need.Kind > s.Kind || need.Workers > s.Workers {
		return false
	}
	if need.Resources.Memory > s.Resources.Memory || need.Resources.CPUs > s.Resources.CPUs {
		return false
	}
	return containsAll(s.Images, need.Images) && containsAll(s.Addons, need.Addons)
}

// containsAll reports whether have holds every element of want.
func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// Merge returns the smallest spec that covers both s and o, with s's owner.
func (s Spec) Merge(o Spec) Spec {
	m := s
	m.Kind = max(s.Kind, o.Kind)
	m.Workers = max(s.Workers, o.Workers)
	m.Images = union(s.Images, o.Images)
	m.Addons = union(s.Addons, o.Addons)
	m.Resources = Resources{Memory: max(s.Resources.Memory, o.Resources.Memory), CPUs: max(s.Resources.CPUs, o.Resources.CPUs)}
	m.Cap = Resources{Memory: minPositive(s.Cap.Memory, o.Cap.Memory), CPUs: minPositive(s.Cap.CPUs, o.Cap.CPUs)}
	return m
}

// minPositive is the smaller of a and b that is above zero, or zero.
func minPositive[T int64 | float64](a, b T) T {
	switch {
	case a <= 0:
		return max(b, 0)
	case b <= 0:
		return a
	default:
		return min(a, b)
	}
}

// union returns a's elements, then those of b that a lacks, in a new
// slice (nil when both are empty).
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, v := range b {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
