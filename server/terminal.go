package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"kubelab/lessons"
	"kubelab/sandbox"
	"kubelab/server/terminal"
)

// MaxTabs caps the terminal tabs one learner may open.
const MaxTabs = 8

// specFor is the sandbox a learner needs for a lesson (nil: a plain shell).
func specFor(learner string, l *lessons.Lesson) sandbox.Spec {
	if l == nil {
		return sandbox.Spec{Owner: learner, Kind: sandbox.KindShell}
	}
	return sandbox.ForLesson(learner, l)
}

func (s *Server) handleTerminal(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	learner := learnerFrom(ctx)
	if learner == "" {
		s.writeError(w, r, errNoSession)
		return
	}
	tab := 0
	if v := r.URL.Query().Get("tab"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n >= MaxTabs {
			s.writeError(w, r, errorf(http.StatusBadRequest, "tab must be a number from 0 to %d", MaxTabs-1))
			return
		}
		tab = n
	}
	var lesson *lessons.Lesson
	if id := r.URL.Query().Get("lesson"); id != "" {
		track, slug, ok := strings.Cut(id, "/")
		if !ok {
			s.writeError(w, r, errorf(http.StatusBadRequest, "lesson must be <track>/<slug>, got %q", id))
			return
		}
		_, l, err := s.lookupLesson(ctx, track, slug)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if l.Sandbox == lessons.SandboxNone {
			s.writeError(w, r, errorf(http.StatusBadRequest, "lesson %s has no terminal (sandbox: none)", l.ID()))
			return
		}
		lesson = l
	}
	if err := s.store.EnsureLearner(ctx, learner); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Full, or this learner started too many: 429 before the upgrade.
	if err := s.sandboxes.Admit(learner); err != nil {
		s.writeError(w, r, err)
		return
	}
	// A shell that outlived a dropped socket is reattached; make sure the
	// lesson's setup ran in its sandbox all the same.
	if sb, ok := s.sandboxes.Lookup(learner); ok && lesson != nil {
		if _, live := s.hub.Session(terminal.Key{Owner: learner, Tab: tab}); live {
			if err := s.runSetup(ctx, sb, lesson); err != nil {
				s.log.Warn("lesson setup failed", "user_id", learner, "lesson", lesson.ID(), "err", err)
			}
		}
	}
	detach := s.sandboxes.Attach(learner)
	s.hub.ServeWS(w, r, terminal.Key{Owner: learner, Tab: tab}, s.opener(learner, lesson), detach)
}

// opener creates the learner's shell: it gets (or creates) their sandbox,
// streaming progress to the page, runs the lesson's setup once, and opens a
// PTY.
func (s *Server) opener(learner string, lesson *lessons.Lesson) terminal.Opener {
	return func(ctx context.Context, status func(state, message string, percent int)) (sandbox.Terminal, error) {
		status("starting", "Preparing your sandbox…", 0)
		spec := specFor(learner, lesson)
		spec.Cap = s.classCap(ctx, learner, lesson)
		sb, err := s.sandboxes.Acquire(ctx, spec, func(p sandbox.Progress) {
			status("progress", p.Message, p.Percent)
		})
		if err != nil {
			s.log.Warn("sandbox failed", "user_id", learner, "err", err)
			return nil, learnerError(err)
		}
		if lesson != nil {
			status("progress", "Preparing the lesson…", 95)
			if err := s.runSetup(ctx, sb, lesson); err != nil {
				return nil, err
			}
			s.restoreProgress(ctx, sb, learner, lesson, status)
		}
		term, err := sb.OpenTerminal(ctx, 80, 24)
		if err != nil {
			return nil, fmt.Errorf("could not open a shell in your sandbox: %w", err)
		}
		status("ready", "Your sandbox is ready.", 100)
		return term, nil
	}
}

// learnerError turns a sandbox failure into a sentence for the page.
func learnerError(err error) error {
	switch {
	case errors.Is(err, sandbox.ErrQuota), errors.Is(err, sandbox.ErrRateLimited):
		_, msg := statusOf(err)
		return errors.New(msg)
	case errors.Is(err, sandbox.ErrUnsupported):
		return fmt.Errorf("this lesson needs more than this server's sandboxes provide: %w", err)
	default:
		return fmt.Errorf("your sandbox could not be started: %w", err)
	}
}

// runSetup runs a lesson's hidden setup blocks in a sandbox, once per
// sandbox and lesson.
func (s *Server) runSetup(ctx context.Context, sb sandbox.Sandbox, l *lessons.Lesson) error {
	if len(l.Setup) == 0 {
		return nil
	}
	key := sb.ID() + "\x00" + l.ID()
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	if s.setupDone[key] {
		return nil
	}
	for _, b := range l.Setup {
		res, err := sb.Exec(ctx, b.Text)
		if err != nil {
			return fmt.Errorf("lesson setup (%s:%d): %w", l.File, b.Line, err)
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("lesson setup (%s:%d) exited with code %d: %s", l.File, b.Line, res.ExitCode, firstLine(res.Stderr))
		}
	}
	s.setupDone[key] = true
	return nil
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}
