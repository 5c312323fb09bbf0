package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"kubelab/lessons"
	"kubelab/sandbox"
	"kubelab/server/lessontest"
)

// Restoring progress: a learner whose sandbox was culled (idle, lifetime)
// comes back to a lesson in which they passed steps. Their new sandbox is
// empty; before their terminal opens, the solutions of the steps they
// passed are replayed in it, so that the cluster (or engine, or home
// directory) holds what their progress says it does.

// replayTimeout bounds one solution block of a replay.
const replayTimeout = 10 * time.Minute

// restorer replays each (sandbox, lesson) at most once; a second terminal
// of the same learner waits for the replay in flight.
type restorer struct {
	mu   sync.Mutex
	runs map[string]chan struct{} // sandbox ID + lesson ID -> closed when done
}

// restoreProgress replays learner's passed steps of l in sb when sb was
// made by this server after the last of those passes (an adopted sandbox
// kept its state; one the learner already worked in has it). status
// reports progress to the page. A step that cannot be restored is logged
// and left: the page still shows the learner's progress, and a check says
// what is missing.
func (s *Server) restoreProgress(ctx context.Context, sb sandbox.Sandbox, learner string, l *lessons.Lesson, status func(state, message string, percent int)) {
	lt, ok := s.sandboxes.Lifetime(learner)
	if !ok || lt.ID != sb.ID() || lt.CreatedAt.Before(s.started) {
		return
	}
	steps, err := s.passedSteps(ctx, learner, l, lt.CreatedAt)
	if err != nil {
		s.log.Warn("restore progress: read progress", "user_id", learner, "lesson", l.ID(), "err", err)
		return
	}
	if len(steps) == 0 {
		return
	}
	key := sb.ID() + "\x00" + l.ID()
	s.restore.mu.Lock()
	if s.restore.runs == nil {
		s.restore.runs = map[string]chan struct{}{}
	}
	if done, ok := s.restore.runs[key]; ok {
		s.restore.mu.Unlock()
		status("progress", "Restoring your progress…", 96)
		select {
		case <-done:
		case <-ctx.Done():
		}
		return
	}
	done := make(chan struct{})
	s.restore.runs[key] = done
	s.restore.mu.Unlock()
	defer close(done)

	start := time.Now()
	s.log.Info("restoring progress", "user_id", learner, "lesson", l.ID(), "sandbox_id", sb.ID(), "steps", len(steps))
	// The replay belongs to the sandbox, not to this connection: a learner
	// who reloads meanwhile waits for it instead of starting another.
	rctx := context.WithoutCancel(ctx)
	err = lessontest.Replay(rctx, sb, steps, replayTimeout, func(i int, st *lessons.Step) {
		status("progress", fmt.Sprintf("Restoring your progress: step %d of %d, %s…", i+1, len(steps), st.Title),
			96+3*i/len(steps))
	})
	if err != nil {
		s.log.Warn("restore progress: some steps were not restored", "user_id", learner, "lesson", l.ID(), "sandbox_id", sb.ID(), "err", err)
		status("progress", "Some of your earlier steps could not be restored; their checks say what is missing.", 99)
		return
	}
	s.log.Info("progress restored", "user_id", learner, "lesson", l.ID(), "sandbox_id", sb.ID(), "steps", len(steps), "elapsed", time.Since(start))
}

// passedSteps are the steps of l that learner passed, in lesson order, if
// every pass came before since (else nil: the sandbox made since has seen
// their work). Steps without solutions (quizzes) need nothing replayed.
func (s *Server) passedSteps(ctx context.Context, learner string, l *lessons.Lesson, since time.Time) ([]*lessons.Step, error) {
	prog, err := s.store.LessonProgress(ctx, learner, l.ID())
	if err != nil {
		return nil, err
	}
	var passed []int
	for _, p := range prog {
		if !p.Passed {
			continue
		}
		if !p.PassedAt.Before(since) {
			return nil, nil
		}
		passed = append(passed, p.Step)
	}
	var steps []*lessons.Step
	for _, st := range l.Steps {
		if slices.Contains(passed, st.Num) && len(st.Solutions) > 0 {
			steps = append(steps, st)
		}
	}
	return steps, nil
}
