package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"kubelab/lessons"
	"kubelab/server/store"
)

// Drills: a lesson marked drill: true is run against the clock. Starting it
// releases the learner's sandbox (the terminal then makes a fresh one) and
// stores an attempt whose deadline is the server's clock plus the lesson's
// time limit. While it runs, every check run through the check API is
// recorded with the points it earned and every hint shown costs the
// lesson's hint cost. At the deadline the attempt is over: the first drill
// request after it finishes the attempt as timed out, and checks run later
// score nothing. The review page shows each task with its last result and
// its solution.

// drillStore is what drills need of the store.
type drillStore interface {
	StartDrill(ctx context.Context, a store.DrillAttempt) (store.DrillAttempt, error)
	DrillAttempt(ctx context.Context, id int64) (store.DrillAttempt, error)
	LatestDrill(ctx context.Context, learner, lesson string) (store.DrillAttempt, error)
	RecordDrillResult(ctx context.Context, r store.DrillResult) (store.DrillAttempt, error)
	RecordDrillHint(ctx context.Context, attempt int64, step, index, cost int, at time.Time) (store.DrillAttempt, error)
	FinishDrill(ctx context.Context, id int64, at time.Time, timedOut bool) (store.DrillAttempt, error)
	DrillResults(ctx context.Context, attempt int64) ([]store.DrillResult, error)
	DrillHints(ctx context.Context, attempt int64) ([]store.DrillHint, error)
	DrillLeaderboard(ctx context.Context, lesson, classroom string, limit int) ([]store.LeaderboardEntry, error)
}

// sandboxReleaser is the sandbox Manager's Release: it deletes a learner's
// sandbox so that the next terminal gets a fresh one.
type sandboxReleaser interface {
	Release(ctx context.Context, owner string) error
}

// drillRoutes adds the drill API and the review page, if the store keeps
// drills.
func (s *Server) drillRoutes(mux *http.ServeMux) {
	if _, ok := s.store.(drillStore); !ok {
		return
	}
	mux.HandleFunc("GET /api/drills/{track}/{slug}", s.handleDrill)
	mux.HandleFunc("POST /api/drills/{track}/{slug}/start", s.handleDrillStart)
	mux.HandleFunc("POST /api/drills/{track}/{slug}/finish", s.handleDrillFinish)
	mux.HandleFunc("GET /api/drills/{track}/{slug}/leaderboard", s.handleDrillLeaderboard)
	mux.HandleFunc("GET /drills/{track}/{slug}/review/{attempt}", s.handleDrillReview)
}

func (s *Server) drills() drillStore {
	ds, _ := s.store.(drillStore)
	return ds
}

// drillLesson is the drill named in the URL; a lesson that is not a drill
// is a bad request.
func (s *Server) drillLesson(ctx context.Context, r *http.Request) (*lessons.Lesson, error) {
	_, l, err := s.lookupLesson(ctx, r.PathValue("track"), r.PathValue("slug"))
	if err != nil {
		return nil, err
	}
	if !l.Drill {
		return nil, errorf(http.StatusBadRequest, "lesson %s is not a drill", l.ID())
	}
	return l, nil
}

// maxScore is what a drill's checks are worth together.
func maxScore(l *lessons.Lesson) int {
	n := 0
	for _, st := range l.Steps {
		for _, c := range st.Checks {
			n += c.Points
		}
	}
	return n
}

// expire finishes a as timed out if its deadline has passed.
func (s *Server) expire(ctx context.Context, a store.DrillAttempt) (store.DrillAttempt, error) {
	if !a.Finished.IsZero() || s.now().Before(a.Deadline) {
		return a, nil
	}
	a, err := s.drills().FinishDrill(ctx, a.ID, a.Deadline, true)
	if err != nil {
		return a, fmt.Errorf("time out drill: %w", err)
	}
	s.log.Info("drill timed out", "user_id", a.Learner, "lesson", a.Lesson, "attempt", a.ID, "score", a.Score)
	return a, nil
}

// latestDrill is the learner's latest attempt at l, timed out if its
// deadline passed; ok is false if there is none.
func (s *Server) latestDrill(ctx context.Context, learner string, l *lessons.Lesson) (a store.DrillAttempt, ok bool, err error) {
	a, err = s.drills().LatestDrill(ctx, learner, l.ID())
	if errors.Is(err, store.ErrNotFound) {
		return a, false, nil
	}
	if err != nil {
		return a, false, err
	}
	a, err = s.expire(ctx, a)
	return a, err == nil, err
}

type apiDrillCheck struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Points  int    `json:"points"`
	Passed  bool   `json:"passed"`
	Message string `json:"message,omitempty"` // the last result's explanation
}

type apiDrillTask struct {
	Step   int             `json:"step"`
	Title  string          `json:"title"`
	Passed bool            `json:"passed"`
	Checks []apiDrillCheck `json:"checks"`
}

// apiDrill is an attempt as the API reports it.
type apiDrill struct {
	Attempt    int64          `json:"attempt"`
	Lesson     string         `json:"lesson"`
	Started    time.Time      `json:"started"`
	Deadline   time.Time      `json:"deadline"`
	Finished   *time.Time     `json:"finished,omitempty"`
	TimeLeftMS int64          `json:"time_left_ms"`
	TimeLimit  int64          `json:"time_limit_ms"`
	Running    bool           `json:"running"`
	TimedOut   bool           `json:"timed_out"`
	Score      int            `json:"score"`
	MaxScore   int            `json:"max_score"`
	HintCost   int            `json:"hint_cost"`
	HintsUsed  int            `json:"hints_used"`
	Tasks      []apiDrillTask `json:"tasks"`
	Review     string         `json:"review,omitempty"` // the review page, once finished
}

// drillTasks pairs each step's checks with an attempt's results: a check
// is passed if any run of it passed; its message is the last run's.
func drillTasks(l *lessons.Lesson, results []store.DrillResult) []apiDrillTask {
	type key struct {
		step int
		id   string
	}
	passed := map[key]bool{}
	last := map[key]string{}
	for _, r := range results {
		k := key{r.Step, r.CheckID}
		passed[k] = passed[k] || r.Passed
		last[k] = r.Message
	}
	tasks := []apiDrillTask{}
	for _, st := range l.Steps {
		t := apiDrillTask{Step: st.Num, Title: st.Title, Passed: len(st.Checks) > 0, Checks: []apiDrillCheck{}}
		for _, c := range st.Checks {
			k := key{st.Num, c.ID}
			title := c.Title
			if title == "" {
				title = c.Question
			}
			t.Checks = append(t.Checks, apiDrillCheck{ID: c.ID, Title: title, Points: c.Points, Passed: passed[k], Message: last[k]})
			t.Passed = t.Passed && passed[k]
		}
		tasks = append(tasks, t)
	}
	return tasks
}

func (s *Server) drillStatus(ctx context.Context, l *lessons.Lesson, a store.DrillAttempt) (apiDrill, error) {
	results, err := s.drills().DrillResults(ctx, a.ID)
	if err != nil {
		return apiDrill{}, err
	}
	hints, err := s.drills().DrillHints(ctx, a.ID)
	if err != nil {
		return apiDrill{}, err
	}
	now := s.now()
	out := apiDrill{
		Attempt: a.ID, Lesson: a.Lesson, Started: a.Started, Deadline: a.Deadline,
		TimeLimit: a.Deadline.Sub(a.Started).Milliseconds(), Running: a.Running(now), TimedOut: a.TimedOut,
		Score: a.Score, MaxScore: a.MaxScore, HintCost: l.HintCost, HintsUsed: len(hints),
		Tasks: drillTasks(l, results),
	}
	if out.Running {
		out.TimeLeftMS = a.Deadline.Sub(now).Milliseconds()
	}
	if !a.Finished.IsZero() {
		f := a.Finished
		out.Finished = &f
		out.Review = fmt.Sprintf("/drills/%s/%s/review/%d", l.Track, l.Slug, a.ID)
	}
	return out, nil
}

func (s *Server) handleDrillStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	learner := learnerFrom(ctx)
	l, err := s.drillLesson(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if l.TimeLimit <= 0 {
		s.writeError(w, r, fmt.Errorf("drill %s has no time limit", l.ID()))
		return
	}
	// A drill started again ends the attempt that was running.
	if prev, ok, err := s.latestDrill(ctx, learner, l); err != nil {
		s.writeError(w, r, err)
		return
	} else if ok && prev.Finished.IsZero() {
		if _, err := s.drills().FinishDrill(ctx, prev.ID, s.now(), false); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if rel, ok := s.sandboxes.(sandboxReleaser); ok {
		if err := rel.Release(ctx, learner); err != nil {
			s.writeError(w, r, fmt.Errorf("fresh sandbox for drill %s: %w", l.ID(), err))
			return
		}
	}
	now := s.now()
	a, err := s.drills().StartDrill(ctx, store.DrillAttempt{
		Learner: learner, Lesson: l.ID(), Started: now, Deadline: now.Add(l.TimeLimit), MaxScore: maxScore(l),
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("drill started", "user_id", learner, "lesson", l.ID(), "attempt", a.ID, "deadline", a.Deadline)
	out, err := s.drillStatus(ctx, l, a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// currentDrill is the drill lesson of the request and the learner's latest
// attempt at it; when there is none, or on an error, it has answered the
// request and returns false.
func (s *Server) currentDrill(w http.ResponseWriter, r *http.Request) (*lessons.Lesson, store.DrillAttempt, bool) {
	ctx := r.Context()
	l, err := s.drillLesson(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return nil, store.DrillAttempt{}, false
	}
	a, ok, err := s.latestDrill(ctx, learnerFrom(ctx), l)
	if err != nil {
		s.writeError(w, r, err)
		return nil, store.DrillAttempt{}, false
	}
	if !ok {
		s.writeError(w, r, errorf(http.StatusNotFound, "you have not started drill %s", l.ID()))
		return nil, store.DrillAttempt{}, false
	}
	return l, a, true
}

func (s *Server) handleDrill(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	l, a, ok := s.currentDrill(w, r)
	if !ok {
		return
	}
	out, err := s.drillStatus(ctx, l, a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDrillFinish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	l, a, ok := s.currentDrill(w, r)
	if !ok {
		return
	}
	if a.Finished.IsZero() {
		var err error
		if a, err = s.drills().FinishDrill(ctx, a.ID, s.now(), false); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.log.Info("drill finished", "user_id", a.Learner, "lesson", a.Lesson, "attempt", a.ID, "score", a.Score)
	}
	out, err := s.drillStatus(ctx, l, a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type apiLeader struct {
	Rank     int       `json:"rank"`
	Name     string    `json:"name"`
	You      bool      `json:"you"`
	Score    int       `json:"score"`
	MaxScore int       `json:"max_score"`
	UsedMS   int64     `json:"used_ms"`
	Used     string    `json:"-"` // for pages: 4m12s
	TimedOut bool      `json:"timed_out"`
	Finished time.Time `json:"finished"`
}

// displayName names a learner on a leaderboard: the username of an
// account, else a short hash (an anonymous learner's ID is its cookie, so
// it is never shown).
func (s *Server) displayName(ctx context.Context, learner string) string {
	if s.cfg.Accounts != nil {
		if u, err := s.cfg.Accounts.UserByID(ctx, learner); err == nil {
			return u.Username
		}
	}
	sum := sha256.Sum256([]byte("kubelab leaderboard " + learner))
	return "learner-" + hex.EncodeToString(sum[:3])
}

func (s *Server) handleDrillLeaderboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	l, err := s.drillLesson(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	classroom := r.URL.Query().Get("classroom")
	if classroom != "" {
		if err := s.maySeeClassBoard(r, classroom); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	out, err := s.leaders(ctx, l.ID(), classroom, 100)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"lesson": l.ID(), "classroom": classroom, "leaders": out})
}

// leaders is a drill's leaderboard (a classroom's, or everyone's for "").
func (s *Server) leaders(ctx context.Context, lesson, classroom string, limit int) ([]apiLeader, error) {
	board, err := s.drills().DrillLeaderboard(ctx, lesson, classroom, limit)
	if err != nil {
		return nil, err
	}
	me := learnerFrom(ctx)
	out := []apiLeader{}
	for _, e := range board {
		a := e.Attempt
		out = append(out, apiLeader{
			Rank: e.Rank, Name: s.displayName(ctx, a.Learner), You: a.Learner == me,
			Score: a.Score, MaxScore: a.MaxScore, UsedMS: a.Used().Milliseconds(), TimedOut: a.TimedOut, Finished: a.Finished,
			Used: a.Used().Round(time.Second).String(),
		})
	}
	return out, nil
}

// maySeeClassBoard lets a classroom's members, its instructor and admins
// see its leaderboard; anyone else gets 403 (404 for no such classroom).
func (s *Server) maySeeClassBoard(r *http.Request, id string) error {
	cs := s.classrooms()
	if cs == nil {
		return errorf(http.StatusNotFound, "There is no classroom %q.", id)
	}
	c, err := cs.ClassroomByID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "There is no classroom %q.", id)
	}
	if err != nil {
		return err
	}
	u := identityFrom(r.Context()).user
	if u != nil && (u.Role == store.RoleAdmin || u.ID == c.Instructor) {
		return nil
	}
	if member, err := cs.IsMember(r.Context(), c.ID, learnerFrom(r.Context())); err != nil || member {
		return err
	}
	return errorf(http.StatusForbidden, "Only the members and the instructor of %s see its leaderboard.", c.Name)
}

// scoreDrillCheck records the results of a check request in the learner's
// running attempt at l, if l is a drill and one is running. Failures are
// logged: the check itself has been answered.
func (s *Server) scoreDrillCheck(ctx context.Context, learner string, l *lessons.Lesson, st *lessons.Step, resp CheckResponse) {
	if !l.Drill || s.drills() == nil {
		return
	}
	a, ok, err := s.latestDrill(ctx, learner, l)
	if err != nil {
		s.log.Error("drill check", "user_id", learner, "lesson", l.ID(), "err", err)
		return
	}
	if !ok || !a.Finished.IsZero() {
		return
	}
	now := s.now()
	for i, res := range resp.Results {
		_, err := s.drills().RecordDrillResult(ctx, store.DrillResult{
			Attempt: a.ID, Step: st.Num, CheckID: res.ID, Passed: res.Passed, Message: res.Message,
			Points: st.Checks[i].Points, At: now,
		})
		if errors.Is(err, store.ErrDrillOver) {
			_, err = s.expire(ctx, a)
		}
		if err != nil {
			s.log.Error("drill check", "user_id", learner, "lesson", l.ID(), "attempt", a.ID, "err", err)
			return
		}
	}
}

// chargeDrillHint charges a hint shown during the learner's running
// attempt at l, if l is a drill and one is running.
func (s *Server) chargeDrillHint(ctx context.Context, learner string, l *lessons.Lesson, st *lessons.Step, index int) {
	if !l.Drill || s.drills() == nil {
		return
	}
	a, ok, err := s.latestDrill(ctx, learner, l)
	if err == nil && ok && a.Finished.IsZero() {
		_, err = s.drills().RecordDrillHint(ctx, a.ID, st.Num, index, l.HintCost, s.now())
		if errors.Is(err, store.ErrDrillOver) {
			_, err = s.expire(ctx, a)
		}
	}
	if err != nil {
		s.log.Error("drill hint", "user_id", learner, "lesson", l.ID(), "err", err)
	}
}

// reviewCheck and reviewTask are the review page's view of a task.
type reviewCheck struct {
	apiDrillCheck
	Earned int
}

type reviewTask struct {
	Step      int
	Title     string
	Passed    bool
	Checks    []reviewCheck
	Solutions []string
}

type drillReviewPage struct {
	layoutData
	Lesson   *lessons.Lesson
	Attempt  store.DrillAttempt
	Used     time.Duration
	Limit    time.Duration
	Tasks    []reviewTask
	Hints    int
	HintCost int
	Boards   []reviewBoard // everyone's, then each of the learner's classrooms'
}

// reviewBoard is a leaderboard on the review page.
type reviewBoard struct {
	Title   string
	Leaders []apiLeader
}

func (s *Server) handleDrillReview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	l, err := s.drillLesson(ctx, r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("attempt"), 10, 64)
	if err != nil {
		s.pageError(w, r, errorf(http.StatusBadRequest, "%q is not an attempt number", r.PathValue("attempt")))
		return
	}
	a, err := s.drills().DrillAttempt(ctx, id)
	// Someone else's attempt is as unknown as a missing one.
	if errors.Is(err, store.ErrNotFound) || (err == nil && (a.Learner != learnerFrom(ctx) || a.Lesson != l.ID())) {
		s.pageError(w, r, errorf(http.StatusNotFound, "you have no attempt %d at drill %s", id, l.ID()))
		return
	}
	if err == nil {
		a, err = s.expire(ctx, a)
	}
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if a.Finished.IsZero() {
		s.pageError(w, r, errorf(http.StatusConflict, "attempt %d is still running: finish the drill to see its review", id))
		return
	}
	results, err := s.drills().DrillResults(ctx, a.ID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	hints, err := s.drills().DrillHints(ctx, a.ID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	earned := map[string]int{}
	for _, res := range results {
		earned[strconv.Itoa(res.Step)+"/"+res.CheckID] += res.Points
	}
	data := &drillReviewPage{
		layoutData: layoutData{Title: "Review: " + l.Title, BodyClass: "drill-review"},
		Lesson:     l, Attempt: a, Used: a.Used().Round(time.Second), Limit: l.TimeLimit,
		Hints: len(hints), HintCost: l.HintCost,
	}
	for i, t := range drillTasks(l, results) {
		rt := reviewTask{Step: t.Step, Title: t.Title, Passed: t.Passed}
		for _, c := range t.Checks {
			rt.Checks = append(rt.Checks, reviewCheck{apiDrillCheck: c, Earned: earned[strconv.Itoa(t.Step)+"/"+c.ID]})
		}
		for _, b := range l.Steps[i].Solutions {
			rt.Solutions = append(rt.Solutions, b.Text)
		}
		data.Tasks = append(data.Tasks, rt)
	}
	data.Boards, err = s.reviewBoards(ctx, l.ID())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if err := s.renderExtra(w, r, "drill_review", data); err != nil {
		s.log.Error("render drill review", "err", err)
	}
}

// renderExtra renders a page whose template is not in the shared page set:
// it is parsed with the layout on each request (a review is not a hot path).
func (s *Server) renderExtra(w http.ResponseWriter, r *http.Request, name string, data pageData) error {
	t, err := template.ParseFS(s.cfg.Web, "templates/layout.html", "templates/"+name+".html")
	if err != nil {
		s.pageError(w, r, fmt.Errorf("parse template %s: %w", name, err))
		return nil
	}
	id := identityFrom(r.Context())
	if id.user != nil {
		data.setIdentity(id.csrf, id.user.Username, id.user.Role)
	} else {
		data.setIdentity(id.csrf, "", "")
	}
	data.setAssetVersion(s.pages.assetVersion)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		s.pageError(w, r, fmt.Errorf("render %s: %w", name, err))
		return nil
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(buf.Bytes())
	return err
}

// reviewBoards are the top ten of everyone and of each classroom the
// learner joined.
func (s *Server) reviewBoards(ctx context.Context, lesson string) ([]reviewBoard, error) {
	all, err := s.leaders(ctx, lesson, "", 10)
	if err != nil {
		return nil, err
	}
	boards := []reviewBoard{{Title: "Everyone", Leaders: all}}
	cs := s.classrooms()
	if cs == nil {
		return boards, nil
	}
	joined, err := cs.JoinedClassrooms(ctx, learnerFrom(ctx))
	if err != nil {
		return nil, err
	}
	for _, c := range joined {
		leaders, err := s.leaders(ctx, lesson, c.ID, 10)
		if err != nil {
			return nil, err
		}
		boards = append(boards, reviewBoard{Title: c.Name, Leaders: leaders})
	}
	return boards, nil
}
