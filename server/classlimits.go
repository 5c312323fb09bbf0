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
	ids, err := cs.LearnerClassrooms(ctx, learner)
	if err != nil {
		s.log.Warn("classroom limits: list the learner's classrooms", "user_id", learner, "err", err)
		return sandbox.Resources{}
	}
	var limits []sandbox.Spec
	for _, id := range ids {
		c, err := cs.ClassroomByID(ctx, id)
		if err != nil {
			s.log.Warn("classroom limits: read a classroom", "classroom", id, "err", err)
			continue
		}
		if !slices.Contains(c.Lessons, l.ID()) && !slices.Contains(c.Lessons, l.Track) {
			continue
		}
		limits = append(limits, sandbox.Spec{Cap: sandbox.Resources{Memory: int64(c.MemoryMiB) << 20, CPUs: float64(c.CPUMillis) / 1000}})
	}
	var capped sandbox.Spec
	for _, sp := range limits {
		capped = capped.Merge(sp) // the lowest of each limit set
	}
	return capped.Cap
}
