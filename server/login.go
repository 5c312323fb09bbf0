package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"kubelab/server/auth"
	"kubelab/server/store"
)

type loginPage struct {
	layoutData
	OIDC     bool // a "sign in with your organisation" button instead of the password form
	Username string
	Next     string
	Error    string
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	if identityFrom(r.Context()).user != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, "", r.URL.Query().Get("next"), "")
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, username, next, msg string) {
	data := &loginPage{
		layoutData: layoutData{Title: "Sign in", BodyClass: "login-page"},
		OIDC:       s.cfg.Auth == AuthOIDC,
		Username:   username, Next: safeNext(next), Error: msg,
	}
	if err := s.render(w, r, status, "login", data); err != nil {
		s.pageError(w, r, err)
	}
}

// handleLogin checks a username and password (the CSRF token was checked
// before) and starts a session. Failures count against the account and the
// client address; a locked one answers 429 with Retry-After.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	username := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	next := r.PostFormValue("next")
	userKey, addrKey := userKeyPrefix+username, addrKeyPrefix+clientAddr(r)

	if wait := max(s.userLimit.Locked(userKey), s.addrLimit.Locked(addrKey)); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		mins := int(math.Ceil(wait.Minutes()))
		s.log.Warn("login refused: locked", "username", username, "addr", addrKey)
		s.renderLogin(w, r, http.StatusTooManyRequests, username, next,
			"Too many failed sign-ins. Try again in "+strconv.Itoa(mins)+" minute"+plural(mins)+".")
		return
	}

	ok := false
	u, err := s.cfg.Accounts.UserByUsername(ctx, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Spend the time a real check takes, so timing does not tell
		// which usernames exist.
		_, _ = auth.VerifyPassword(s.dummyHash(), password)
	case err != nil:
		s.pageError(w, r, err)
		return
	case u.PasswordHash == "":
		// An account without a password (from an identity provider).
	default:
		ok, err = auth.VerifyPassword(u.PasswordHash, password)
		if err != nil {
			s.log.Error("verify password", "username", username, "err", err)
		}
	}
	if !ok {
		s.userLimit.Fail(userKey)
		s.addrLimit.Fail(addrKey)
		s.log.Info("login failed", "username", username, "addr", addrKey)
		s.renderLogin(w, r, http.StatusUnauthorized, username, next, "Wrong username or password.")
		return
	}
	s.userLimit.Reset(userKey)
	s.startSession(w, r, u, next)
}

// startSession signs u in: a new session in the store, its token in the
// cookie, and a redirect to next.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u store.User, next string) {
	token := auth.NewToken()
	now := s.now()
	sess := store.Session{ID: auth.TokenHash(token), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL), LastSeen: now}
	if err := s.cfg.Accounts.CreateSession(r.Context(), sess); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.log.Info("login", "user_id", u.ID, "username", u.Username, "role", u.Role)
	s.setCookie(w, r, SessionCookie, token, s.cfg.SessionTTL)
	s.setCookie(w, r, LoginCookie, "", -1)
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

// handleLogout revokes the session and clears the cookie.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if sid := identityFrom(r.Context()).sessionID; sid != "" {
		if err := s.cfg.Accounts.RevokeSession(r.Context(), sid); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	s.setCookie(w, r, SessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

type apiUser struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// handleUsers lists the accounts (instructors and admins only).
func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	users, err := s.cfg.Accounts.Users(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []apiUser{}
	for _, u := range users {
		out = append(out, apiUser{ID: u.ID, Username: u.Username, Role: u.Role, CreatedAt: u.CreatedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

// safeNext keeps a post-login redirect on this site: a path, not a URL
// or a scheme-relative //host.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/login") {
		return "/"
	}
	return next
}

// clientAddr is the address the request came from. X-Forwarded-For is not
// trusted: a client could set it to dodge the per-address limit.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// The keys of the login limiters: failures per account and per client
// address (a classroom may share one).
const (
	userKeyPrefix = "user:"
	addrKeyPrefix = "addr:"
)

// keepLoginLimits restores the limiters (by the prefix of their keys) from
// the store and has them save every change there, so that a restart keeps
// lockouts and the failures counting towards one. A failed save is logged:
// the counts in memory still hold.
func keepLoginLimits(accounts Accounts, log *slog.Logger, limiters map[string]*auth.Limiter) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	saved, err := accounts.LoginLimits(ctx)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	for _, l := range saved {
		for prefix, lim := range limiters {
			if strings.HasPrefix(l.Key, prefix) {
				lim.Restore(l.Key, l.Failures, l.LockedUntil)
			}
		}
	}
	for _, lim := range limiters {
		lim.Saved = func(key string, failures []time.Time, lockedUntil time.Time) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := accounts.SaveLoginLimit(ctx, store.LoginLimit{Key: key, Failures: failures, LockedUntil: lockedUntil}); err != nil {
				log.Error("save failed sign-ins", "key", key, "err", err)
			}
		}
	}
	return nil
}
