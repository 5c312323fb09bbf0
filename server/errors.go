package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"kubelab/sandbox"
)

// Error is an error with an HTTP status and a message safe to show users.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// errNoSession refuses a request without the learner's session cookie.
var errNoSession = errorf(http.StatusUnauthorized, "no %s cookie: open a kubelab page first", SessionCookie)

// errorf makes an *Error with a formatted message.
func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// statusOf maps an error to an HTTP status and a message for the user.
// Anything not known is "internal error" to the user.
func statusOf(err error) (int, string) {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Status, e.Message
	case errors.Is(err, sandbox.ErrQuota):
		return http.StatusTooManyRequests, "All sandboxes on this server are in use; try again in a minute."
	case errors.Is(err, sandbox.ErrRateLimited):
		return http.StatusTooManyRequests, fmt.Sprintf("Too many sandboxes were started for you in a short time; try again in %s.", waitText(retryAfter(err)))
	case errors.Is(err, sandbox.ErrNotFound):
		return http.StatusNotFound, "sandbox not found"
	default:
		return http.StatusInternalServerError, "internal error"
	}
}

// writeError answers with a JSON error, logging what the user does not see.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusOf(err)
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter(err)))
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// decodeJSON reads a small JSON body strictly: JSON content type, size
// capped, unknown fields refused, exactly one value.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !strings.HasPrefix(ct, "application/json;") {
		return errorf(http.StatusUnsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "the body is larger than %d bytes", mbe.Limit)
		}
		return errorf(http.StatusBadRequest, "bad JSON body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "bad JSON body: more than one value")
	}
	return nil
}

// waitText is a wait in words: "40 s", "12 min".
func waitText(seconds int) string {
	if seconds < 90 {
		return strconv.Itoa(seconds) + " s"
	}
	return strconv.Itoa((seconds+59)/60) + " min"
}
