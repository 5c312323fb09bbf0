package server

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"kubelab/server/store"
	"kubelab/server/terminal"
)

// watchRoutes serves instructors a learner's terminal, read-only and live:
// the page and its websocket. Learners get 403 and nothing of the terminal.
func (s *Server) watchRoutes(mux *http.ServeMux) {
	mux.Handle("GET /watch/{learner}", s.requireRole(store.RoleInstructor, s.handleWatchPage))
	mux.Handle("GET /ws/watch", s.requireRole(store.RoleInstructor, s.handleWatch))
}

type watchPage struct {
	layoutData
	Learner string // learner ID
	Name    string // their username, or the ID
	Tab     int
	Tabs    []watchTab // the learner's open tabs, and the one watched
}

type watchTab struct {
	Num, Label    int
	Current, Live bool
}

func (s *Server) handleWatchPage(w http.ResponseWriter, r *http.Request) {
	learner, name, err := s.watchedLearner(r, r.PathValue("learner"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	tab, err := parseWatchTab(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data := &watchPage{
		layoutData: layoutData{Title: "Watching " + name, BodyClass: "lesson-page watch-page"},
		Learner:    learner, Name: name, Tab: tab,
		Tabs: watchTabs(s.hub.Tabs(learner), tab),
	}
	if err := s.render(w, r, http.StatusOK, "watch", data); err != nil {
		s.log.Error("render watch page", "err", err)
	}
}

// handleWatch bridges an instructor's socket to a learner's terminal,
// read-only. It opens nothing: no sandbox, no shell.
func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request) {
	learner, _, err := s.watchedLearner(r, r.URL.Query().Get("learner"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tab, err := parseWatchTab(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("instructor watches a terminal", "user_id", learnerFrom(r.Context()), "learner", learner, "tab", tab)
	s.hub.ServeWatch(w, r, terminal.Key{Owner: learner, Tab: tab})
}

// watchedLearner checks the learner ID a watcher asks for and returns it
// with the learner's name.
func (s *Server) watchedLearner(r *http.Request, id string) (learner, name string, err error) {
	if !learnerIDPattern.MatchString(id) {
		return "", "", errorf(http.StatusBadRequest, "%q is not a learner ID.", id)
	}
	if s.cfg.Accounts == nil {
		return id, id, nil
	}
	u, err := s.cfg.Accounts.UserByID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", errorf(http.StatusNotFound, "There is no learner %s.", id)
	}
	if err != nil {
		return "", "", err
	}
	if err := s.mayWatch(r, u.ID); err != nil {
		return "", "", err
	}
	return u.ID, u.Username, nil
}

// mayWatch refuses (403) an instructor who does not teach a classroom that
// learner joined; admins may watch anyone.
func (s *Server) mayWatch(r *http.Request, learner string) error {
	watcher := identityFrom(r.Context()).user
	if watcher != nil && watcher.Role == store.RoleAdmin {
		return nil
	}
	refused := errorf(http.StatusForbidden, "You may watch only the learners of your own classrooms.")
	cs := s.classrooms()
	if watcher == nil || cs == nil {
		return refused
	}
	joined, err := cs.JoinedClassrooms(r.Context(), learner)
	if err != nil {
		return err
	}
	for _, c := range joined {
		if c.Instructor == watcher.ID {
			return nil
		}
	}
	return refused
}

// watchTabs lists the live tabs and current, in order.
func watchTabs(live []int, current int) []watchTab {
	var tabs []watchTab
	for _, n := range live {
		tabs = append(tabs, watchTab{Num: n, Label: n + 1, Current: n == current, Live: true})
	}
	if !slices.Contains(live, current) {
		tabs = append(tabs, watchTab{Num: current, Label: current + 1, Current: true})
		slices.SortFunc(tabs, func(a, b watchTab) int { return a.Num - b.Num })
	}
	return tabs
}

// parseWatchTab is the tab of the "tab" query parameter, 0 without it.
func parseWatchTab(r *http.Request) (int, error) {
	v := r.URL.Query().Get("tab")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n >= MaxTabs {
		return 0, errorf(http.StatusBadRequest, "tab must be a number from 0 to %d", MaxTabs-1)
	}
	return n, nil
}
