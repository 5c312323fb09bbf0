package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"kubelab/lessons"
	"kubelab/server/store"
)

// Classrooms: an instructor creates a classroom (a name, the lessons or
// tracks it uses, an optional window, per-learner sandbox limits) and hands
// out its join link /join/{code}. A learner who opens it (or types the code
// at /join) and confirms becomes a member. Members see the class page; the
// class's instructor, or an admin, sees its dashboard (dashboard.go).
// Classrooms need accounts: with --auth none every route answers 400 and
// says so.

// classroomStore is what classrooms need of the store.
type classroomStore interface {
	CreateClassroom(ctx context.Context, c store.Classroom) (store.Classroom, error)
	ClassroomByID(ctx context.Context, id string) (store.Classroom, error)
	ClassroomByCode(ctx context.Context, code string) (store.Classroom, error)
	Classrooms(ctx context.Context, instructor string) ([]store.Classroom, error)
	JoinClassroom(ctx context.Context, classroom, learner string) error
	IsMember(ctx context.Context, classroom, learner string) (bool, error)
	Members(ctx context.Context, classroom string) ([]store.Member, error)
	LearnerClassrooms(ctx context.Context, learner string) ([]string, error)
	JoinedClassrooms(ctx context.Context, learner string) ([]store.Classroom, error)
}

func (s *Server) classrooms() classroomStore {
	cs, _ := s.store.(classroomStore)
	return cs
}

// classroomRoutes adds the classroom pages, API and dashboard, if the store
// keeps classrooms.
func (s *Server) classroomRoutes(mux *http.ServeMux) {
	if s.classrooms() == nil {
		return
	}
	routes := map[string]http.HandlerFunc{
		"GET /classrooms":                                    s.handleClassroomsPage,
		"POST /classrooms":                                   s.instructorOnly(s.handleCreateClassroom),
		"POST /api/classrooms":                               s.instructorOnly(s.handleCreateClassroom),
		"GET /classrooms/{id}":                               s.handleClassroomPage,
		"GET /join":                                          s.handleJoinForm,
		"GET /join/{code}":                                   s.handleJoinPage,
		"POST /join/{code}":                                  s.handleJoin,
		"GET /classrooms/{id}/dashboard":                     s.handleDashboardPage,
		"GET /classrooms/{id}/events":                        s.handleDashboardEvents,
		"GET /api/classrooms/{id}/grid":                      s.handleDashboardGrid,
		"GET /classrooms/{id}/results.csv":                   s.handleResultsCSV,
		"POST /api/classrooms/{id}/learners/{learner}/reset": s.handleResetSandbox,
	}
	for pattern, h := range routes {
		if s.cfg.Auth == AuthNone {
			h = s.handleNoClassrooms
		}
		mux.HandleFunc(pattern, h)
	}
}

// handleNoClassrooms answers every classroom route under --auth none.
func (s *Server) handleNoClassrooms(w http.ResponseWriter, r *http.Request) {
	s.classroomError(w, r, errorf(http.StatusBadRequest,
		"Classrooms need accounts: start kubelab serve with --auth local or --auth oidc (with --auth none everyone is an anonymous learner)."))
}

// classroomError answers JSON under /api/ and for the event stream, a page
// elsewhere.
func (s *Server) classroomError(w http.ResponseWriter, r *http.Request, err error) {
	if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasSuffix(r.URL.Path, "/events") || strings.HasSuffix(r.URL.Path, ".csv") {
		s.writeError(w, r, err)
		return
	}
	s.pageError(w, r, err)
}

// instructorOnly is requireRole(instructor) for a HandlerFunc.
func (s *Server) instructorOnly(h http.HandlerFunc) http.HandlerFunc {
	return s.requireRole(store.RoleInstructor, h).ServeHTTP
}

// classroom is the classroom named in the URL, with whether the user is
// its instructor (or an admin), and whether they are a member.
func (s *Server) classroom(r *http.Request) (c store.Classroom, teaches, member bool, err error) {
	c, err = s.classrooms().ClassroomByID(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return c, false, false, errorf(http.StatusNotFound, "There is no classroom %q.", r.PathValue("id"))
	}
	if err != nil {
		return c, false, false, err
	}
	u := identityFrom(r.Context()).user
	if u == nil {
		return c, false, false, errorf(http.StatusUnauthorized, "You are not signed in; sign in at /login.")
	}
	teaches = u.Role == store.RoleAdmin || (u.Role == store.RoleInstructor && u.ID == c.Instructor)
	member, err = s.classrooms().IsMember(r.Context(), c.ID, u.ID)
	return c, teaches, member, err
}

// teacherClassroom is the classroom in the URL if the user teaches it;
// anyone else gets 403.
func (s *Server) teacherClassroom(r *http.Request) (store.Classroom, error) {
	c, teaches, _, err := s.classroom(r)
	if err != nil {
		return c, err
	}
	if !teaches {
		return c, errorf(http.StatusForbidden, "Only the instructor of %s (or an admin) may see this.", c.Name)
	}
	return c, nil
}

// classLesson is one lesson a classroom uses.
type classLesson struct {
	*lessons.Lesson
	ID string
}

// classLessons expands a classroom's list ("track/slug" or "track") into
// lessons, in the list's order, skipping what the catalog no longer has.
func classLessons(cat *lessons.Catalog, list []string) []classLesson {
	var out []classLesson
	seen := map[string]bool{}
	add := func(l *lessons.Lesson) {
		if l != nil && !seen[l.ID()] {
			seen[l.ID()] = true
			out = append(out, classLesson{Lesson: l, ID: l.ID()})
		}
	}
	for _, item := range list {
		if track, slug, ok := strings.Cut(item, "/"); ok {
			add(cat.Lesson(track, slug))
		} else if t := cat.Track(item); t != nil {
			for _, l := range t.Lessons {
				add(l)
			}
		}
	}
	return out
}

// classroomView is a classroom as pages show it.
type classroomView struct {
	store.Classroom
	JoinURL string
	Window  string
	Limits  string
}

func (s *Server) classroomView(r *http.Request, c store.Classroom) classroomView {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	v := classroomView{Classroom: c, JoinURL: scheme + "://" + r.Host + "/join/" + c.Code}
	const layout = "2006-01-02 15:04 MST"
	switch {
	case c.StartsAt.IsZero() && c.EndsAt.IsZero():
		v.Window = "open"
	case c.EndsAt.IsZero():
		v.Window = "from " + c.StartsAt.Format(layout)
	case c.StartsAt.IsZero():
		v.Window = "until " + c.EndsAt.Format(layout)
	default:
		v.Window = c.StartsAt.Format(layout) + " to " + c.EndsAt.Format(layout)
	}
	var lim []string
	if c.CPUMillis > 0 {
		lim = append(lim, strconv.Itoa(c.CPUMillis)+"m CPU")
	}
	if c.MemoryMiB > 0 {
		lim = append(lim, strconv.Itoa(c.MemoryMiB)+" MiB memory")
	}
	v.Limits = strings.Join(lim, ", ")
	if v.Limits == "" {
		v.Limits = "server default"
	}
	return v
}

type classroomsPage struct {
	layoutData
	Teaches    []classroomView
	Joined     []classroomView
	Instructor bool
	Tracks     []*lessons.Track
}

func (s *Server) handleClassroomsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u := identityFrom(ctx).user
	data := &classroomsPage{layoutData: layoutData{Title: "Classrooms", BodyClass: "classrooms-page"}}
	if u != nil && roleRank[u.Role] >= roleRank[store.RoleInstructor] {
		data.Instructor = true
		who := u.ID
		if u.Role == store.RoleAdmin {
			who = ""
		}
		list, err := s.classrooms().Classrooms(ctx, who)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		for _, c := range list {
			data.Teaches = append(data.Teaches, s.classroomView(r, c))
		}
		cat, err := s.catalog(ctx)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		data.Tracks = cat.Tracks
	}
	if u != nil {
		joined, err := s.classrooms().JoinedClassrooms(ctx, u.ID)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		for _, c := range joined {
			data.Joined = append(data.Joined, s.classroomView(r, c))
		}
	}
	if err := s.renderExtra(w, r, "classrooms", data); err != nil {
		s.log.Error("render classrooms", "err", err)
	}
}

// createClassroomRequest is the JSON body of POST /api/classrooms; the
// form on /classrooms sends the same fields (lessons one per line or
// comma-separated, times as RFC 3339 or datetime-local in UTC).
type createClassroomRequest struct {
	Name      string    `json:"name"`
	Lessons   []string  `json:"lessons"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CPUMillis int       `json:"cpu_millis"`
	MemoryMiB int       `json:"memory_mib"`
}

type apiClassroom struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Code     string   `json:"code"`
	JoinURL  string   `json:"join_url"`
	Lessons  []string `json:"lessons"`
	PageURL  string   `json:"page_url"`
	BoardURL string   `json:"dashboard_url"`
}

func parseFormTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errorf(http.StatusBadRequest, "%q is not a time (use 2006-01-02T15:04, UTC).", v)
}

func (s *Server) handleCreateClassroom(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	isAPI := strings.HasPrefix(r.URL.Path, "/api/")
	var req createClassroomRequest
	if isAPI {
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	} else {
		if err := r.ParseForm(); err != nil {
			s.pageError(w, r, errorf(http.StatusBadRequest, "bad form: %v", err))
			return
		}
		req.Name = r.PostFormValue("name")
		for _, f := range strings.FieldsFunc(r.PostFormValue("lessons"), func(c rune) bool { return c == ',' || c == '\n' || c == '\r' || c == ' ' }) {
			req.Lessons = append(req.Lessons, f)
		}
		req.Lessons = append(req.Lessons, r.PostForm["lesson"]...)
		var err error
		if req.StartsAt, err = parseFormTime(r.PostFormValue("starts_at")); err == nil {
			req.EndsAt, err = parseFormTime(r.PostFormValue("ends_at"))
		}
		for _, f := range []struct {
			name string
			dst  *int
		}{{"cpu_millis", &req.CPUMillis}, {"memory_mib", &req.MemoryMiB}} {
			if v := strings.TrimSpace(r.PostFormValue(f.name)); v != "" && err == nil {
				if *f.dst, err = strconv.Atoi(v); err != nil {
					err = errorf(http.StatusBadRequest, "%s: %q is not a number.", f.name, v)
				}
			}
		}
		if err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	fail := func(err error) {
		if isAPI {
			s.writeError(w, r, err)
		} else {
			s.pageError(w, r, err)
		}
	}
	cat, err := s.catalog(ctx)
	if err != nil {
		fail(err)
		return
	}
	for _, item := range req.Lessons {
		track, slug, isLesson := strings.Cut(item, "/")
		if (isLesson && cat.Lesson(track, slug) == nil) || (!isLesson && cat.Track(item) == nil) {
			fail(errorf(http.StatusBadRequest, "There is no lesson or track %q.", item))
			return
		}
	}
	c, err := s.classrooms().CreateClassroom(ctx, store.Classroom{
		Name: req.Name, Instructor: learnerFrom(ctx), Lessons: req.Lessons,
		StartsAt: req.StartsAt, EndsAt: req.EndsAt, CPUMillis: req.CPUMillis, MemoryMiB: req.MemoryMiB,
	})
	if errors.Is(err, store.ErrInvalid) {
		err = errorf(http.StatusBadRequest, "%v", err)
	}
	if err != nil {
		fail(err)
		return
	}
	s.log.Info("classroom created", "user_id", c.Instructor, "classroom", c.ID, "code", c.Code)
	if !isAPI {
		http.Redirect(w, r, "/classrooms/"+c.ID, http.StatusSeeOther)
		return
	}
	v := s.classroomView(r, c)
	writeJSON(w, http.StatusCreated, apiClassroom{
		ID: c.ID, Name: c.Name, Code: c.Code, JoinURL: v.JoinURL, Lessons: c.Lessons,
		PageURL: "/classrooms/" + c.ID, BoardURL: "/classrooms/" + c.ID + "/dashboard",
	})
}

type classroomPage struct {
	layoutData
	Class   classroomView
	Teaches bool
	Lessons []classLesson
	Members int
}

func (s *Server) handleClassroomPage(w http.ResponseWriter, r *http.Request) {
	c, teaches, member, err := s.classroom(r)
	if err == nil && !teaches && !member {
		err = errorf(http.StatusForbidden, "You are not in %s; join it with its code at /join.", c.Name)
	}
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	cat, err := s.catalog(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	members, err := s.classrooms().Members(r.Context(), c.ID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data := &classroomPage{
		layoutData: layoutData{Title: c.Name, BodyClass: "classroom-page"},
		Class:      s.classroomView(r, c), Teaches: teaches,
		Lessons: classLessons(cat, c.Lessons), Members: len(members),
	}
	if err := s.renderExtra(w, r, "classroom", data); err != nil {
		s.log.Error("render classroom", "err", err)
	}
}

type joinPage struct {
	layoutData
	Code    string
	Class   *classroomView
	Message string
}

// handleJoinForm shows the code form; ?code= sends the browser to the join
// link.
func (s *Server) handleJoinForm(w http.ResponseWriter, r *http.Request) {
	if code := store.NormalizeCode(r.URL.Query().Get("code")); code != "" {
		http.Redirect(w, r, "/join/"+url.PathEscape(code), http.StatusSeeOther)
		return
	}
	data := &joinPage{layoutData: layoutData{Title: "Join a classroom", BodyClass: "classroom-page"}}
	if err := s.renderExtra(w, r, "classroom_join", data); err != nil {
		s.log.Error("render join", "err", err)
	}
}

func (s *Server) classroomByCode(r *http.Request) (store.Classroom, error) {
	c, err := s.classrooms().ClassroomByCode(r.Context(), r.PathValue("code"))
	if errors.Is(err, store.ErrNotFound) {
		return c, errorf(http.StatusNotFound, "No classroom has the code %q; check it with your instructor.", r.PathValue("code"))
	}
	return c, err
}

// handleJoinPage asks the learner to confirm: joining is a POST, so that
// a link cannot enrol anyone by itself.
func (s *Server) handleJoinPage(w http.ResponseWriter, r *http.Request) {
	c, err := s.classroomByCode(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if ok, _ := s.classrooms().IsMember(r.Context(), c.ID, learnerFrom(r.Context())); ok {
		http.Redirect(w, r, "/classrooms/"+c.ID, http.StatusSeeOther)
		return
	}
	v := s.classroomView(r, c)
	data := &joinPage{layoutData: layoutData{Title: "Join " + c.Name, BodyClass: "classroom-page"}, Code: c.Code, Class: &v}
	if err := s.renderExtra(w, r, "classroom_join", data); err != nil {
		s.log.Error("render join", "err", err)
	}
}

func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
	c, err := s.classroomByCode(r)
	if err == nil && !c.EndsAt.IsZero() && !s.now().Before(c.EndsAt) {
		err = errorf(http.StatusGone, "%s ended at %s.", c.Name, c.EndsAt.Format(time.RFC3339))
	}
	if err == nil {
		err = s.classrooms().JoinClassroom(r.Context(), c.ID, learnerFrom(r.Context()))
	}
	if err != nil {
		s.classroomError(w, r, err)
		return
	}
	s.log.Info("joined classroom", "user_id", learnerFrom(r.Context()), "classroom", c.ID)
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, map[string]string{"classroom": c.ID, "name": c.Name})
		return
	}
	http.Redirect(w, r, "/classrooms/"+c.ID, http.StatusSeeOther)
}
