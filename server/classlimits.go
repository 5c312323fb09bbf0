package server

import (
	"context"
	"slices"

	"kubelab/lessons"
	"kubelab/sandbox"
)

// classCap is the ceiling a learner's classrooms put on each container of
// their sandbox for lesson l: the lowest CPU and memory limits among the
// classrooms they joined that use l (the lesson or its track). Zero fields
// set none; so does a learner in no such classroom, or a lesson-less
// terminal.
func (s *Server) classCap(ctx context.Context, learner string, l *lessons.Lesson) sandbox.Resources {
	cs := s.classrooms()
	if cs == nil || l == nil {
		return sandbox.Resources{}
	}
	joined, err := cs.JoinedClassrooms(ctx, learner)
	if err != nil {
		s.log.Warn("classroom limits: list the learner's classrooms", "user_id", learner, "err", err)
		return sandbox.Resources{}
	}
	var capped sandbox.Spec
	for _, c := range joined {
		if slices.Contains(c.Lessons, l.ID()) || slices.Contains(c.Lessons, l.Track) {
			// Merge keeps the lowest of each limit set.
			capped = capped.Merge(sandbox.Spec{Cap: sandbox.Resources{Memory: int64(c.MemoryMiB) << 20, CPUs: float64(c.CPUMillis) / 1000}})
		}
	}
	return capped.Cap
}
