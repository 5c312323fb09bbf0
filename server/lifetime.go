package server

import (
	"errors"
	"math"
	"net/http"
	"time"

	"kubelab/sandbox"
)

// A sandbox's lifetime on the page: GET /api/sandbox tells the lesson page
// when the learner's sandbox ends (it warns WarnBefore ahead and offers an
// Extend button), or why none can be made now; POST /api/sandbox/extend
// extends it.

// DefaultWarnBefore is how long before a sandbox's end the page warns.
const DefaultWarnBefore = 15 * time.Minute

// sandboxJSON is the learner's sandbox as GET /api/sandbox gives it.
type sandboxJSON struct {
	ID             string    `json:"id"`
	CreatedAt      time.Time `json:"created_at"`
	ExpiresAt      time.Time `json:"expires_at"`
	SecondsLeft    int64     `json:"seconds_left"`
	WarnSeconds    int64     `json:"warn_seconds"` // the page warns when seconds_left drops below
	IdleSeconds    int64     `json:"idle_seconds"` // no terminal for this long ends it
	ExtendSeconds  int64     `json:"extend_seconds"`
	ExtensionsLeft int       `json:"extensions_left"`
}

// refusalJSON says why no sandbox can be made for the learner now.
type refusalJSON struct {
	Error             string `json:"error"`
	RetryAfterSeconds int    `json:"retry_after_seconds"`
}

type sandboxStateJSON struct {
	Sandbox *sandboxJSON `json:"sandbox"`           // null: none
	Refused *refusalJSON `json:"refused,omitempty"` // set when one could not be made now
}

func (s *Server) lifetimeJSON(lt sandbox.Lifetime) *sandboxJSON {
	return &sandboxJSON{
		ID: lt.ID, CreatedAt: lt.CreatedAt.UTC(), ExpiresAt: lt.ExpiresAt.UTC(),
		SecondsLeft:    max(int64(lt.ExpiresAt.Sub(s.now()).Seconds()), 0),
		WarnSeconds:    int64(s.cfg.WarnBefore.Seconds()),
		IdleSeconds:    int64(lt.IdleTimeout.Seconds()),
		ExtendSeconds:  int64(lt.ExtendBy.Seconds()),
		ExtensionsLeft: lt.ExtensionsLeft,
	}
}

func (s *Server) handleSandboxState(w http.ResponseWriter, r *http.Request) {
	learner := learnerFrom(r.Context())
	if learner == "" {
		s.writeError(w, r, errNoSession)
		return
	}
	var out sandboxStateJSON
	if lt, ok := s.sandboxes.Lifetime(learner); ok {
		out.Sandbox = s.lifetimeJSON(lt)
	} else if err := s.sandboxes.Admit(learner); err != nil {
		_, msg := statusOf(err)
		out.Refused = &refusalJSON{Error: msg, RetryAfterSeconds: retryAfter(err)}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleSandboxExtend(w http.ResponseWriter, r *http.Request) {
	learner := learnerFrom(r.Context())
	if learner == "" {
		s.writeError(w, r, errNoSession)
		return
	}
	lt, err := s.sandboxes.Extend(learner)
	switch {
	case errors.Is(err, sandbox.ErrNoSandbox):
		s.writeError(w, r, errorf(http.StatusNotFound, "You have no sandbox to extend; open a lesson to start one."))
		return
	case errors.Is(err, sandbox.ErrNoExtension):
		s.writeError(w, r, errorf(http.StatusConflict, "Your sandbox has no extension left; it ends at %s UTC.",
			lt.ExpiresAt.UTC().Format("15:04")))
		return
	case err != nil:
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sandboxStateJSON{Sandbox: s.lifetimeJSON(lt)})
}

// retryAfter is the whole seconds a *sandbox.RetryError asks to wait
// (at least 1), or 60 for other refusals.
func retryAfter(err error) int {
	var re *sandbox.RetryError
	if errors.As(err, &re) {
		return max(int(math.Ceil(re.After.Seconds())), 1)
	}
	return 60
}
