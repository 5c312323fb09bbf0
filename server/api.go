package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"kubelab/checker"
	"kubelab/lessons"
	"kubelab/sandbox/checktarget"
	"kubelab/server/store"
)

type apiTrack struct {
	ID          string      `json:"id"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Lessons     []apiLesson `json:"lessons"`
}

type apiLesson struct {
	ID       string   `json:"id"`
	Track    string   `json:"track"`
	Slug     string   `json:"slug"`
	Title    string   `json:"title"`
	Minutes  int      `json:"minutes"`
	Sandbox  string   `json:"sandbox"`
	Summary  string   `json:"summary,omitempty"`
	Requires []string `json:"requires,omitempty"`
	Steps    int      `json:"steps"`
}

func lessonSummary(l *lessons.Lesson) apiLesson {
	return apiLesson{
		ID: l.ID(), Track: l.Track, Slug: l.Slug, Title: l.Title, Minutes: l.Minutes,
		Sandbox: string(l.Sandbox), Summary: l.Summary, Requires: l.Requires, Steps: len(l.Steps),
	}
}

func (s *Server) handleTracks(w http.ResponseWriter, r *http.Request) {
	cat, err := s.catalog(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []apiTrack{}
	for _, t := range cat.Tracks {
		at := apiTrack{ID: t.ID, Title: t.Title, Description: t.Description, Lessons: []apiLesson{}}
		for _, l := range t.Lessons {
			at.Lessons = append(at.Lessons, lessonSummary(l))
		}
		out = append(out, at)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tracks": out})
}

// apiLessonDetail is a lesson as the browser may see it: no solutions, no
// setup, no quiz answers, hints only as a count.
type apiLessonDetail struct {
	apiLesson
	Intro      string          `json:"intro"`
	StepDetail []apiStepDetail `json:"steps"` // shadows apiLesson.Steps (the count)
}

type apiStepDetail struct {
	Num      int        `json:"num"`
	Title    string     `json:"title"`
	HTML     string     `json:"html"`
	Checks   []apiCheck `json:"checks"`
	Hints    int        `json:"hints"`
	Runnable int        `json:"runnable"`
	Passed   bool       `json:"passed"`
}

type apiCheck struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Kind     string   `json:"kind"`
	Question string   `json:"question,omitempty"`
	Options  []string `json:"options,omitempty"`
	Multiple bool     `json:"multiple,omitempty"`
}

func (s *Server) handleLesson(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, l, err := s.lookupLesson(ctx, r.PathValue("track"), r.PathValue("slug"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	prog, err := s.progress(ctx, learnerFrom(ctx))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := apiLessonDetail{apiLesson: lessonSummary(l), Intro: string(l.Intro), StepDetail: []apiStepDetail{}}
	for _, st := range l.Steps {
		v := stepView(st)
		d := apiStepDetail{
			Num: st.Num, Title: st.Title, HTML: string(st.HTML), Hints: len(st.Hints),
			Runnable: len(st.Runnable), Passed: prog[l.ID()][st.Num].Passed, Checks: []apiCheck{},
		}
		quizzes := map[string]quizView{}
		for _, q := range v.Quizzes {
			quizzes[q.ID] = q
		}
		for _, c := range v.Checks {
			ac := apiCheck{ID: c.ID, Title: c.Title, Kind: c.Kind}
			if q, ok := quizzes[c.ID]; ok {
				ac.Question, ac.Options, ac.Multiple = q.Question, q.Options, q.Multiple
			}
			d.Checks = append(d.Checks, ac)
		}
		out.StepDetail = append(out.StepDetail, d)
	}
	writeJSON(w, http.StatusOK, out)
}

// stepOf validates a step number against a lesson.
func stepOf(l *lessons.Lesson, n int) (*lessons.Step, error) {
	if n < 1 || n > len(l.Steps) {
		return nil, errorf(http.StatusBadRequest, "step %d is out of range: lesson %s has steps 1 to %d", n, l.ID(), len(l.Steps))
	}
	return l.Steps[n-1], nil
}

type checkRequest struct {
	Step    int              `json:"step"`
	Answers map[string][]int `json:"answers,omitempty"`
}

// CheckResult is one check's outcome as the API reports it.
type CheckResult struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Passed  bool   `json:"passed"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// CheckResponse is the answer of the check API.
type CheckResponse struct {
	Passed  bool          `json:"passed"`
	Step    int           `json:"step"`
	Results []CheckResult `json:"results"`
}

// stepRequest reads a POST about one step of the lesson in the URL: the
// lesson, the JSON body into req, and the step that step() names in it.
func (s *Server) stepRequest(w http.ResponseWriter, r *http.Request, req any, step func() int) (*lessons.Lesson, *lessons.Step, error) {
	_, l, err := s.lookupLesson(r.Context(), r.PathValue("track"), r.PathValue("slug"))
	if err != nil {
		return nil, nil, err
	}
	if err := decodeJSON(w, r, req); err != nil {
		return nil, nil, err
	}
	st, err := stepOf(l, step())
	if err != nil {
		return nil, nil, err
	}
	return l, st, nil
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	learner := learnerFrom(ctx)
	var req checkRequest
	l, st, err := s.stepRequest(w, r, &req, func() int { return req.Step })
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for id := range req.Answers {
		if !hasQuiz(st, id) {
			s.writeError(w, r, errorf(http.StatusBadRequest, "step %d has no quiz %q", st.Num, id))
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	resp, err := s.evaluateStep(ctx, learner, l, st, req.Answers)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	raw, err := json.Marshal(resp.Results)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("encode results: %w", err))
		return
	}
	if _, err := s.store.RecordAttempt(ctx, store.Attempt{
		Learner: learner, Lesson: l.ID(), Step: st.Num, Passed: resp.Passed, Results: raw, At: time.Now(),
	}); err != nil {
		s.writeError(w, r, fmt.Errorf("record attempt: %w", err))
		return
	}
	s.scoreDrillCheck(ctx, learner, l, st, resp)
	s.notifyCheck(ctx, learner, l.ID(), st.Num, resp.Passed)
	s.log.Info("check", "user_id", learner, "lesson", l.ID(), "step", st.Num, "passed", resp.Passed)
	writeJSON(w, http.StatusOK, resp)
}

func hasQuiz(st *lessons.Step, id string) bool {
	for _, c := range st.Checks {
		if c.ID == id && c.Kind == "quiz" {
			return true
		}
	}
	return false
}

// evaluateStep runs every check of a step: quizzes are graded here, the
// rest run against the learner's sandbox.
func (s *Server) evaluateStep(ctx context.Context, learner string, l *lessons.Lesson, st *lessons.Step, answers map[string][]int) (CheckResponse, error) {
	resp := CheckResponse{Step: st.Num, Passed: true, Results: make([]CheckResult, len(st.Checks))}
	var runnable []checker.Check
	var slots []int
	for i, c := range st.Checks {
		if c.Kind == "quiz" {
			opts := make([]checker.QuizOption, len(c.Options))
			for j, o := range c.Options {
				opts[j] = checker.QuizOption{Text: o.Text, Correct: o.Correct}
			}
			title := c.Title
			if title == "" {
				title = c.Question
			}
			res := checker.GradeQuiz(c.ID, title, opts, answers[c.ID], c.Explain)
			resp.Results[i] = CheckResult{ID: c.ID, Title: title, Passed: res.Passed, Message: res.Message}
			continue
		}
		spec, ok := c.Compiled.(*checker.Spec)
		if !ok {
			return resp, fmt.Errorf("check %s of %s was not compiled", c.ID, l.ID())
		}
		runnable = append(runnable, checker.Check{ID: c.ID, Title: c.Title, Timeout: c.Timeout, Spec: spec})
		slots = append(slots, i)
	}
	if len(runnable) > 0 {
		sb, ok := s.sandboxes.Lookup(learner)
		if !ok {
			for k, i := range slots {
				c := runnable[k]
				resp.Results[i] = CheckResult{ID: c.ID, Title: c.Title, Message: "your sandbox is not running: open the terminal of this lesson and do the step first"}
			}
		} else {
			s.sandboxes.Touch(learner)
			results := checker.EvaluateAll(ctx, checktarget.For(sb), runnable)
			for k, res := range results {
				i := slots[k]
				resp.Results[i] = CheckResult{ID: res.ID, Title: res.Title, Passed: res.Passed, Message: res.Message}
			}
		}
	}
	for i, c := range st.Checks {
		if !resp.Results[i].Passed {
			resp.Passed = false
			resp.Results[i].Hint = c.Hint
		}
	}
	return resp, nil
}

type hintRequest struct {
	Step  int `json:"step"`
	Index int `json:"index"`
}

func (s *Server) handleHint(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req hintRequest
	l, st, err := s.stepRequest(w, r, &req, func() int { return req.Step })
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Index < 0 || req.Index >= len(st.Hints) {
		s.writeError(w, r, errorf(http.StatusBadRequest, "hint %d is out of range: step %d has %d hints", req.Index, st.Num, len(st.Hints)))
		return
	}
	shown, err := s.store.RecordHint(ctx, learnerFrom(ctx), l.ID(), st.Num, req.Index)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("record hint: %w", err))
		return
	}
	s.chargeDrillHint(ctx, learnerFrom(ctx), l, st, req.Index)
	writeJSON(w, http.StatusOK, map[string]any{"hint": st.Hints[req.Index], "shown": shown, "total": len(st.Hints)})
}

type apiProgress struct {
	Lesson     string     `json:"lesson"`
	Step       int        `json:"step"`
	Passed     bool       `json:"passed"`
	PassedAt   *time.Time `json:"passed_at,omitempty"`
	Attempts   int        `json:"attempts"`
	HintsShown int        `json:"hints_shown"`
}

func (s *Server) handleProgress(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rows, err := s.store.Progress(ctx, learnerFrom(ctx))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []apiProgress{}
	for _, p := range rows {
		ap := apiProgress{Lesson: p.Lesson, Step: p.Step, Passed: p.Passed, Attempts: p.Attempts, HintsShown: p.HintsShown}
		if p.Passed {
			t := p.PassedAt
			ap.PassedAt = &t
		}
		out = append(out, ap)
	}
	writeJSON(w, http.StatusOK, map[string]any{"learner": learnerFrom(ctx), "progress": out})
}
