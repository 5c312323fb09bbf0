package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"
)

// SessionCookie names the cookie that identifies an anonymous learner.
const SessionCookie = "kubelab_session"

var learnerIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

type learnerKey struct{}

// learnerFrom returns the learner ID that withLearner put in the context.
func learnerFrom(ctx context.Context) string {
	id, _ := ctx.Value(learnerKey{}).(string)
	return id
}

// withLearner identifies the learner by the kubelab_session cookie, setting
// a new one (HttpOnly, SameSite=Lax, Secure over TLS) on first visit. The
// websocket is the exception: an upgrade cannot set a cookie, so it must
// arrive with one.
func (s *Server) withLearner(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := ""
		if c, err := r.Cookie(SessionCookie); err == nil && learnerIDPattern.MatchString(c.Value) {
			id = c.Value
		}
		if id == "" && r.URL.Path != "/ws/terminal" && r.URL.Path != "/healthz" {
			id = newLearnerID()
			http.SetCookie(w, &http.Cookie{
				Name:     SessionCookie,
				Value:    id,
				Path:     "/",
				MaxAge:   365 * 24 * 3600,
				HttpOnly: true,
				Secure:   r.TLS != nil,
				SameSite: http.SameSiteLaxMode,
			})
		}
		if id != "" {
			r = r.WithContext(context.WithValue(r.Context(), learnerKey{}, id))
		}
		next.ServeHTTP(w, r)
	})
}

func newLearnerID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	return hex.EncodeToString(b[:])
}
