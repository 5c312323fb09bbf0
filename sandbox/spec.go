package sandbox

import (
	"fmt"
	"slices"
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

// Covers reports whether a sandbox built to s also satisfies need: at least
// the same kind, at least as many workers, and every image need preloads.
// Owners are not compared.
func (s Spec) Covers(need Spec) bool {
	if need.Kind > s.Kind || need.Workers > s.Workers {
		return false
	}
	for _, img := range need.Images {
		if !slices.Contains(s.Images, img) {
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
	m.Images = slices.Clone(s.Images)
	for _, img := range o.Images {
		if !slices.Contains(m.Images, img) {
			m.Images = append(m.Images, img)
		}
	}
	return m
}
