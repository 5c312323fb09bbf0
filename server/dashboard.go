package server

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"kubelab/server/store"
)

// The instructor's dashboard: a grid of a classroom's learners by the
// steps of its lessons (passed, attempts, hints, time on the step), kept
// live by Server-Sent Events. The check handler calls notifyCheck, which
// publishes the learner's new state of the step to every classroom they
// are in; each open dashboard holds one subscription for its classroom.

// dashboardEvent is one check result, as the event stream sends it.
type dashboardEvent struct {
	Learner string   `json:"learner"`
	Lesson  string   `json:"lesson"`
	Step    int      `json:"step"`
	Passed  bool     `json:"passed"` // this check's result
	Cell    gridCell `json:"cell"`   // the step's state after it
}

// broker fans check results out to the dashboards of each classroom.
// Publishing never blocks: a subscriber that is more than its buffer behind
// loses events and is told to reload the grid.
type broker struct {
	mu   sync.Mutex
	subs map[string]map[*subscriber]struct{} // classroom ID -> subscribers
}

type subscriber struct {
	ch      chan dashboardEvent
	dropped bool // an event did not fit; guarded by broker.mu
}

// brokers holds each Server's broker; it lives beside Server so that
// classrooms stay in their own files.
var brokers sync.Map // *Server -> *broker

func (s *Server) broker() *broker {
	if b, ok := brokers.Load(s); ok {
		return b.(*broker)
	}
	b, _ := brokers.LoadOrStore(s, &broker{subs: map[string]map[*subscriber]struct{}{}})
	return b.(*broker)
}

// subscribe returns a subscription to a classroom's events and the func
// that ends it.
func (b *broker) subscribe(classroom string) (*subscriber, func()) {
	sub := &subscriber{ch: make(chan dashboardEvent, 256)}
	b.mu.Lock()
	if b.subs[classroom] == nil {
		b.subs[classroom] = map[*subscriber]struct{}{}
	}
	b.subs[classroom][sub] = struct{}{}
	b.mu.Unlock()
	return sub, func() {
		b.mu.Lock()
		delete(b.subs[classroom], sub)
		if len(b.subs[classroom]) == 0 {
			delete(b.subs, classroom)
		}
		b.mu.Unlock()
	}
}

func (b *broker) publish(classroom string, ev dashboardEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for sub := range b.subs[classroom] {
		select {
		case sub.ch <- ev:
		default:
			sub.dropped = true
		}
	}
}

// takeDropped reports and clears whether sub lost events.
func (b *broker) takeDropped(sub *subscriber) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := sub.dropped
	sub.dropped = false
	return d
}

// count is the number of subscriptions, for tests.
func (b *broker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.subs {
		n += len(m)
	}
	return n
}

// notifyCheck tells the dashboards of the learner's classrooms about a
// check. Errors are logged: a dashboard is never worth failing a check.
func (s *Server) notifyCheck(ctx context.Context, learner, lesson string, step int, passed bool) {
	cs := s.classrooms()
	if cs == nil {
		return
	}
	ids, err := cs.LearnerClassrooms(ctx, learner)
	if err != nil || len(ids) == 0 {
		if err != nil {
			s.log.Warn("dashboard: classrooms of learner", "user_id", learner, "err", err)
		}
		return
	}
	ev := dashboardEvent{Learner: learner, Lesson: lesson, Step: step, Passed: passed, Cell: gridCell{Attempted: true, Passed: passed}}
	if prog, err := s.store.LessonProgress(ctx, learner, lesson); err == nil {
		for _, p := range prog {
			if p.Step == step {
				ev.Cell = cellOf(p, s.now())
			}
		}
	} else {
		s.log.Warn("dashboard: progress", "user_id", learner, "err", err)
	}
	for _, id := range ids {
		s.broker().publish(id, ev)
	}
}

// gridCell is one learner's state on one step.
type gridCell struct {
	Attempted bool `json:"attempted"`
	Passed    bool `json:"passed"`
	Attempts  int  `json:"attempts"`
	Hints     int  `json:"hints"`
	Seconds   int  `json:"seconds"` // time on the step: first seen to passed (or to the last attempt)
}

func cellOf(p store.StepProgress, now time.Time) gridCell {
	c := gridCell{Attempted: p.Attempts > 0, Passed: p.Passed, Attempts: p.Attempts, Hints: p.HintsShown}
	end := p.UpdatedAt
	if p.Passed && !p.PassedAt.IsZero() {
		end = p.PassedAt
	}
	if end.IsZero() {
		end = now
	}
	if !p.FirstSeen.IsZero() && end.After(p.FirstSeen) {
		c.Seconds = int(end.Sub(p.FirstSeen) / time.Second)
	}
	return c
}

type gridStep struct {
	Lesson string `json:"lesson"`
	Step   int    `json:"step"`
	Title  string `json:"title"`
}

type gridRow struct {
	Learner string              `json:"learner"`
	Name    string              `json:"name"`
	Sandbox string              `json:"sandbox"` // "running" or "none"
	Cells   map[string]gridCell `json:"cells"`   // "lesson#step" -> cell
}

type grid struct {
	Classroom string     `json:"classroom"`
	Steps     []gridStep `json:"steps"`
	Learners  []gridRow  `json:"learners"`
}

func cellKey(lesson string, step int) string { return lesson + "#" + strconv.Itoa(step) }

// grid builds the dashboard's grid from the store.
func (s *Server) grid(ctx context.Context, c store.Classroom) (grid, error) {
	g := grid{Classroom: c.ID, Steps: []gridStep{}, Learners: []gridRow{}}
	cat, err := s.catalog(ctx)
	if err != nil {
		return g, err
	}
	inClass := map[string]bool{}
	for _, l := range classLessons(cat, c.Lessons) {
		for _, st := range l.Steps {
			g.Steps = append(g.Steps, gridStep{Lesson: l.ID, Step: st.Num, Title: st.Title})
			inClass[cellKey(l.ID, st.Num)] = true
		}
	}
	members, err := s.classrooms().Members(ctx, c.ID)
	if err != nil {
		return g, err
	}
	now := s.now()
	for _, m := range members {
		row := gridRow{Learner: m.Learner, Name: m.Username, Sandbox: "none", Cells: map[string]gridCell{}}
		if row.Name == "" {
			row.Name = m.Learner
		}
		if _, ok := s.sandboxes.Lookup(m.Learner); ok {
			row.Sandbox = "running"
		}
		prog, err := s.store.Progress(ctx, m.Learner)
		if err != nil {
			return g, err
		}
		for _, p := range prog {
			if k := cellKey(p.Lesson, p.Step); inClass[k] {
				row.Cells[k] = cellOf(p, now)
			}
		}
		g.Learners = append(g.Learners, row)
	}
	return g, nil
}

type dashboardPage struct {
	layoutData
	Class classroomView
	Grid  grid
}

func (s *Server) handleDashboardPage(w http.ResponseWriter, r *http.Request) {
	c, err := s.teacherClassroom(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	g, err := s.grid(r.Context(), c)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data := &dashboardPage{
		layoutData: layoutData{Title: c.Name + ": dashboard", BodyClass: "dashboard-page"},
		Class:      s.classroomView(r, c), Grid: g,
	}
	if err := s.renderExtra(w, r, "dashboard", data); err != nil {
		s.log.Error("render dashboard", "err", err)
	}
}

func (s *Server) handleDashboardGrid(w http.ResponseWriter, r *http.Request) {
	c, err := s.teacherClassroom(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	g, err := s.grid(r.Context(), c)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// heartbeat is how often an idle event stream sends a comment, so proxies
// keep it open and a gone client is noticed.
const heartbeat = 15 * time.Second

// handleDashboardEvents streams a classroom's check results as
// Server-Sent Events ("check" events with a dashboardEvent; "reload" when
// events were lost) until the client goes away.
func (s *Server) handleDashboardEvents(w http.ResponseWriter, r *http.Request) {
	c, err := s.teacherClassroom(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	sub, unsubscribe := s.broker().subscribe(c.ID)
	defer unsubscribe()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n: subscribed\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		s.log.Warn("dashboard events: cannot flush", "err", err)
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		var msg string
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			msg = ": ping\n\n"
		case ev := <-sub.ch:
			b, err := json.Marshal(ev)
			if err != nil {
				s.log.Error("dashboard event", "err", err)
				continue
			}
			msg = "event: check\ndata: " + string(b) + "\n\n"
			if s.broker().takeDropped(sub) {
				msg += "event: reload\ndata: {}\n\n"
			}
		}
		if _, err := fmt.Fprint(w, msg); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// releaser is the Manager's Release, which the reset button needs.
func (s *Server) releaser() (sandboxReleaser, bool) {
	rel, ok := s.sandboxes.(sandboxReleaser)
	return rel, ok
}

// handleResetSandbox deletes a member's sandbox; their terminal makes a
// fresh one.
func (s *Server) handleResetSandbox(w http.ResponseWriter, r *http.Request) {
	c, err := s.teacherClassroom(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	learner := r.PathValue("learner")
	ok, err := s.classrooms().IsMember(r.Context(), c.ID, learner)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !ok {
		s.writeError(w, r, errorf(http.StatusNotFound, "%q is not a learner of %s.", learner, c.Name))
		return
	}
	rel, ok := s.releaser()
	if !ok {
		s.writeError(w, r, errorf(http.StatusNotImplemented, "This server's sandboxes cannot be reset."))
		return
	}
	if err := rel.Release(r.Context(), learner); err != nil {
		s.writeError(w, r, fmt.Errorf("reset sandbox: %w", err))
		return
	}
	s.log.Info("instructor reset a sandbox", "user_id", learnerFrom(r.Context()), "learner", learner, "classroom", c.ID)
	writeJSON(w, http.StatusOK, map[string]any{"learner": learner, "sandbox": "none"})
}

// csvCell keeps a spreadsheet from reading a cell as a formula.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// handleResultsCSV exports the grid: one row per learner and step.
func (s *Server) handleResultsCSV(w http.ResponseWriter, r *http.Request) {
	c, err := s.teacherClassroom(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	g, err := s.grid(r.Context(), c)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="classroom-`+c.Code+`-results.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"learner", "name", "lesson", "step", "step_title", "passed", "attempts", "hints", "seconds_on_step"})
	for _, row := range g.Learners {
		for _, st := range g.Steps {
			cell := row.Cells[cellKey(st.Lesson, st.Step)]
			_ = cw.Write([]string{
				row.Learner, csvCell(row.Name), st.Lesson, strconv.Itoa(st.Step), csvCell(st.Title),
				strconv.FormatBool(cell.Passed), strconv.Itoa(cell.Attempts), strconv.Itoa(cell.Hints), strconv.Itoa(cell.Seconds),
			})
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("results csv", "err", err)
	}
}
