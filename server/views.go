package server

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"kubelab/lessons"
	"kubelab/server/store"
)

// lookupLesson finds a lesson by its URL parts or returns a 404 *Error.
func (s *Server) lookupLesson(ctx context.Context, track, slug string) (*lessons.Catalog, *lessons.Lesson, error) {
	cat, err := s.catalog(ctx)
	if err != nil {
		return nil, nil, err
	}
	l := cat.Lesson(track, slug)
	if l == nil {
		return cat, nil, errorf(http.StatusNotFound, "no lesson %s/%s", track, slug)
	}
	return cat, l, nil
}

// catalog returns the current catalog; in dev mode a reload error is logged
// and the last good catalog is kept.
func (s *Server) catalog(ctx context.Context) (*lessons.Catalog, error) {
	cat, err := s.lib.Catalog(ctx)
	if err != nil {
		if cat != nil {
			s.log.Warn("lessons reload failed; serving the last good catalog", "err", err)
			return cat, nil
		}
		return nil, fmt.Errorf("load lessons: %w", err)
	}
	return cat, nil
}

// progressIndex maps "track/slug" -> step -> progress.
type progressIndex map[string]map[int]store.StepProgress

func (s *Server) progress(ctx context.Context, learner string) (progressIndex, error) {
	idx := progressIndex{}
	if learner == "" {
		return idx, nil
	}
	rows, err := s.store.Progress(ctx, learner)
	if err != nil {
		return nil, fmt.Errorf("progress of %s: %w", learner, err)
	}
	for _, p := range rows {
		if idx[p.Lesson] == nil {
			idx[p.Lesson] = map[int]store.StepProgress{}
		}
		idx[p.Lesson][p.Step] = p
	}
	return idx, nil
}

// passed counts the lesson's steps the learner passed.
func (p progressIndex) passed(l *lessons.Lesson) int {
	n := 0
	for _, st := range l.Steps {
		if p[l.ID()][st.Num].Passed {
			n++
		}
	}
	return n
}

func percent(n, total int) int {
	if total == 0 {
		return 0
	}
	return 100 * n / total
}

type catalogPage struct {
	layoutData
	Tracks []catalogTrack
}

type catalogTrack struct {
	ID, Title, Description string
	Done                   int
	Lessons                []catalogLesson
}

type catalogLesson struct {
	Track, Slug, Title, Summary, Sandbox, Requires string
	Num, Minutes, Steps, Passed, Percent           int
	Done                                           bool
}

func (s *Server) handleCatalogPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cat, err := s.catalog(ctx)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	prog, err := s.progress(ctx, learnerFrom(ctx))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data := &catalogPage{layoutData: layoutData{Title: "Courses", BodyClass: "catalog-page"}}
	for _, t := range cat.Tracks {
		ct := catalogTrack{ID: t.ID, Title: t.Title, Description: t.Description}
		for _, l := range t.Lessons {
			passed := prog.passed(l)
			done := len(l.Steps) > 0 && passed == len(l.Steps)
			if done {
				ct.Done++
			}
			ct.Lessons = append(ct.Lessons, catalogLesson{
				Track: l.Track, Slug: l.Slug, Title: l.Title, Summary: l.Summary,
				Sandbox: string(l.Sandbox), Requires: strings.Join(l.Requires, ", "),
				Num: l.Num, Minutes: l.Minutes, Steps: len(l.Steps), Passed: passed,
				Percent: percent(passed, len(l.Steps)), Done: done,
			})
		}
		data.Tracks = append(data.Tracks, ct)
	}
	if err := s.render(w, r, http.StatusOK, "catalog", data); err != nil {
		s.pageError(w, r, err)
	}
}

type lessonPage struct {
	layoutData
	Lesson      *lessons.Lesson
	TrackTitle  string
	Steps       []lessonStep
	Passed      int
	Percent     int
	HasTerminal bool
	Next        *lessons.Lesson
}

type lessonStep struct {
	Num        int
	Title      string
	HTML       template.HTML
	Passed     bool
	Checks     []checkView
	Quizzes    []quizView
	Hints      int
	HintsShown int
	ShownHints []string
	Wait       int // seconds the slowest check may wait for the sandbox to converge
}

type checkView struct{ ID, Title, Kind string }

type quizView struct {
	ID, Question string
	Options      []string
	Multiple     bool
}

// stepView turns a step into what the browser may see: check titles and
// quiz questions, never solutions or which option is correct.
func stepView(st *lessons.Step) lessonStep {
	v := lessonStep{Num: st.Num, Title: st.Title, HTML: st.HTML, Hints: len(st.Hints)}
	for _, c := range st.Checks {
		v.Wait = max(v.Wait, int(c.Timeout.Seconds()))
		title := c.Title
		if c.Kind == "quiz" {
			if title == "" {
				title = c.Question
			}
			q := quizView{ID: c.ID, Question: c.Question, Multiple: c.Multiple}
			for _, o := range c.Options {
				q.Options = append(q.Options, o.Text)
			}
			v.Quizzes = append(v.Quizzes, q)
		}
		v.Checks = append(v.Checks, checkView{ID: c.ID, Title: title, Kind: c.Kind})
	}
	return v
}

func (s *Server) handleLessonPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cat, l, err := s.lookupLesson(ctx, r.PathValue("track"), r.PathValue("slug"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	learner := learnerFrom(ctx)
	prog, err := s.progress(ctx, learner)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data := &lessonPage{
		layoutData:  layoutData{Title: l.Title, BodyClass: "lesson-page"},
		Lesson:      l,
		HasTerminal: l.Sandbox != lessons.SandboxNone,
	}
	if t := cat.Track(l.Track); t != nil {
		data.TrackTitle = t.Title
		for i, other := range t.Lessons {
			if other == l && i+1 < len(t.Lessons) {
				data.Next = t.Lessons[i+1]
			}
		}
	}
	for _, st := range l.Steps {
		v := stepView(st)
		p := prog[l.ID()][st.Num]
		v.Passed = p.Passed
		if p.HintsShown > 0 {
			shown, err := s.store.HintsShown(ctx, learner, l.ID(), st.Num)
			if err != nil {
				s.pageError(w, r, err)
				return
			}
			for _, i := range shown {
				if i >= 0 && i < len(st.Hints) {
					v.ShownHints = append(v.ShownHints, st.Hints[i])
				}
			}
			v.HintsShown = len(v.ShownHints)
		}
		data.Steps = append(data.Steps, v)
	}
	data.Passed = prog.passed(l)
	data.Percent = percent(data.Passed, len(l.Steps))
	if err := s.render(w, r, http.StatusOK, "lesson", data); err != nil {
		s.pageError(w, r, err)
	}
}
