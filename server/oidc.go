package server

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"

	"kubelab/server/auth"
	"kubelab/server/store"
)

// oidcCookie keeps the state, nonce and PKCE verifier of a sign-in in
// progress, and where to go after it. Path /auth/ and SameSite=Lax: the
// provider's redirect back is a top-level GET, which carries it.
const oidcCookie = "kubelab_oidc"

// handleOIDCStart (POST, so CSRF-checked) sends the browser to the
// provider.
func (s *Server) handleOIDCStart(w http.ResponseWriter, r *http.Request) {
	v := url.Values{
		"state":    {auth.NewToken()},
		"nonce":    {auth.NewToken()},
		"verifier": {auth.NewToken()},
		"next":     {safeNext(r.PostFormValue("next"))},
	}
	http.SetCookie(w, &http.Cookie{
		Name:     oidcCookie,
		Value:    base64.RawURLEncoding.EncodeToString([]byte(v.Encode())),
		Path:     "/auth/",
		MaxAge:   600,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
	target := s.cfg.OIDC.AuthURL(s.cfg.OIDC.RedirectURL(r), v.Get("state"), v.Get("nonce"), v.Get("verifier"))
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// handleOIDCCallback finishes the sign-in: the state must match the
// cookie's, the code is exchanged and the ID token verified, and the
// provider's user becomes (or already is) an account.
func (s *Server) handleOIDCCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(msg string) {
		s.renderLogin(w, r, http.StatusUnauthorized, "", "", msg)
	}
	c, err := r.Cookie(oidcCookie)
	if err != nil {
		fail("The sign-in expired or was started in another browser; try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Path: "/auth/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		fail("The sign-in expired or was started in another browser; try again.")
		return
	}
	saved, err := url.ParseQuery(string(raw))
	if err != nil || saved.Get("state") == "" || subtle.ConstantTimeCompare([]byte(saved.Get("state")), []byte(q.Get("state"))) != 1 {
		fail("The sign-in expired or was started in another browser; try again.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.log.Info("oidc sign-in refused by the provider", "error", e, "description", q.Get("error_description"))
		fail("The identity provider did not sign you in (" + e + ").")
		return
	}
	id, err := s.cfg.OIDC.Exchange(r.Context(), s.cfg.OIDC.RedirectURL(r), q.Get("code"), saved.Get("nonce"), saved.Get("verifier"))
	if err != nil {
		s.log.Warn("oidc sign-in failed", "err", err)
		fail("The identity provider's answer could not be verified; try again.")
		return
	}
	role, setRole := store.RoleLearner, false
	if store.ValidRole(id.Role) {
		role, setRole = id.Role, true
	}
	u, err := s.cfg.Accounts.ExternalUser(r.Context(), id.ExternalID, id.Username, role, setRole)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.startSession(w, r, u, saved.Get("next"))
}
