package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"kubelab/server/auth"
	"kubelab/server/store"
)

// SessionCookie names the cookie that identifies the browser: with --auth
// none it holds the anonymous learner's ID, with --auth local a session
// token whose hash is the session's key in the store.
const SessionCookie = "kubelab_session"

// LoginCookie names the cookie a signed-out browser gets in local mode: a
// random value the login form's CSRF token is derived from, so that the
// login form is protected too.
const LoginCookie = "kubelab_login"

// Auth modes.
const (
	AuthNone  = "none"  // anonymous learners, one per browser
	AuthLocal = "local" // accounts with passwords in the store
	AuthOIDC  = "oidc"  // accounts from an OpenID Connect provider
)

var learnerIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// identity is who a request comes from.
type identity struct {
	learner   string      // learner ID: the anonymous cookie or the user's ID
	user      *store.User // nil when anonymous or signed out
	sessionID string      // stored session key (token hash); "" without a session
	csrf      string      // the CSRF token this browser must send; "" if none
}

type identityKey struct{}

func identityFrom(ctx context.Context) identity {
	id, _ := ctx.Value(identityKey{}).(identity)
	return id
}

// learnerFrom returns the learner ID that withIdentity put in the context.
func learnerFrom(ctx context.Context) string { return identityFrom(ctx).learner }

// noCookiePath reports whether a request to path must not be given a new
// cookie: the websocket (an upgrade cannot set one), health checks and
// static assets.
func noCookiePath(path string) bool {
	return path == "/ws/terminal" || path == "/healthz" || strings.HasPrefix(path, "/static/")
}

// withIdentity works out who the request is from and puts it in the
// context. Cookies it sets are HttpOnly, SameSite=Lax, Secure over TLS.
func (s *Server) withIdentity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id identity
		if s.cfg.Auth != AuthNone {
			id = s.sessionIdentity(w, r)
		} else {
			id = s.anonymousIdentity(w, r)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// anonymousIdentity identifies an anonymous learner by the session cookie,
// setting a new one on first visit.
func (s *Server) anonymousIdentity(w http.ResponseWriter, r *http.Request) identity {
	id := ""
	if c, err := r.Cookie(SessionCookie); err == nil && learnerIDPattern.MatchString(c.Value) {
		id = c.Value
	}
	if id == "" && !noCookiePath(r.URL.Path) {
		id = newLearnerID()
		s.setCookie(w, r, SessionCookie, id, 365*24*time.Hour)
	}
	return identity{learner: id, csrf: auth.CSRFToken(id)}
}

// sessionIdentity looks the session cookie up in the store. A browser
// without a live session gets a login cookie for the login form's CSRF
// token.
func (s *Server) sessionIdentity(w http.ResponseWriter, r *http.Request) identity {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		u, sid, err := s.lookUpSession(r.Context(), c.Value)
		switch {
		case err == nil:
			return identity{learner: u.ID, user: &u, sessionID: sid, csrf: auth.CSRFToken(c.Value)}
		case !errors.Is(err, store.ErrNotFound):
			s.log.Error("look up session", "err", err)
		}
	}
	secret := ""
	if c, err := r.Cookie(LoginCookie); err == nil && len(c.Value) == 43 {
		secret = c.Value
	}
	if secret == "" && !noCookiePath(r.URL.Path) {
		secret = auth.NewToken()
		s.setCookie(w, r, LoginCookie, secret, time.Hour)
	}
	return identity{csrf: auth.CSRFToken(secret)}
}

// lookUpSession returns the user of a live session (not revoked, not
// expired, user still there) and the session's key, or ErrNotFound.
func (s *Server) lookUpSession(ctx context.Context, token string) (store.User, string, error) {
	sid := auth.TokenHash(token)
	sess, err := s.cfg.Accounts.Session(ctx, sid)
	if err != nil {
		return store.User{}, "", err
	}
	now := s.now()
	if !sess.RevokedAt.IsZero() || !now.Before(sess.ExpiresAt) {
		return store.User{}, "", store.ErrNotFound
	}
	u, err := s.cfg.Accounts.UserByID(ctx, sess.UserID)
	if err != nil {
		return store.User{}, "", err
	}
	if now.Sub(sess.LastSeen) > time.Minute { // one write a minute, not one a request
		if err := s.cfg.Accounts.TouchSession(ctx, sid, now); err != nil {
			s.log.Warn("touch session", "err", err)
		}
	}
	return u, sid, nil
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   int(maxAge / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// requireCSRF refuses a state-changing request (POST, PUT, PATCH, DELETE)
// that does not carry this browser's CSRF token, with 403.
func (s *Server) requireCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			// Forms (login, logout) are small; checking the token parses them.
			r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		}
		if auth.StateChanging(r.Method) && !auth.CheckCSRF(r, identityFrom(r.Context()).csrf) {
			err := errorf(http.StatusForbidden, "This request lacks a valid CSRF token; reload the page and try again.")
			if strings.HasPrefix(r.URL.Path, "/api/") {
				s.writeError(w, r, err)
			} else {
				s.pageError(w, r, err)
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireLogin, with accounts on, keeps signed-out browsers to the login
// pages (/login, /auth/...), health checks and static assets: APIs and the
// websocket answer 401, pages redirect to /login.
func (s *Server) requireLogin(next http.Handler) http.Handler {
	if s.cfg.Auth == AuthNone {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if identityFrom(r.Context()).user != nil || p == "/login" || strings.HasPrefix(p, "/auth/") || p == "/healthz" || strings.HasPrefix(p, "/static/") {
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/ws/") {
			s.writeError(w, r, errorf(http.StatusUnauthorized, "You are not signed in; sign in at /login."))
			return
		}
		target := "/login"
		if r.Method == http.MethodGet && p != "/" {
			target += "?next=" + url.QueryEscape(r.URL.RequestURI())
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	})
}

// roleRank orders roles: each role may do what the ones below it may.
var roleRank = map[string]int{store.RoleLearner: 1, store.RoleInstructor: 2, store.RoleAdmin: 3}

// requireRole lets through users with role or a higher one; anyone else
// (anonymous learners included) gets 403, or 401 when signed out with
// accounts on.
func (s *Server) requireRole(role string, next http.HandlerFunc) http.Handler {
	need, ok := roleRank[role]
	if !ok {
		panic("server: requireRole with unknown role " + role) // a programming error, caught by any test
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := identityFrom(r.Context()).user
		if u == nil && s.cfg.Auth != AuthNone {
			s.writeError(w, r, errorf(http.StatusUnauthorized, "You are not signed in; sign in at /login."))
			return
		}
		if u == nil || roleRank[u.Role] < need {
			err := errorf(http.StatusForbidden, "This needs the %s role.", role)
			if strings.HasPrefix(r.URL.Path, "/api/") {
				s.writeError(w, r, err)
			} else {
				s.pageError(w, r, err)
			}
			return
		}
		next(w, r)
	})
}

func newLearnerID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	return hex.EncodeToString(b[:])
}
