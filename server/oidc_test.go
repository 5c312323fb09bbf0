package server_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/shell"
	"kubelab/server"
	"kubelab/server/auth"
)

// fakeIssuer is a minimal OpenID Connect provider: discovery, JWKS, an
// authorize endpoint that signs in whoever the test says at once, and a
// token endpoint that checks the code, the client and the PKCE verifier.
type fakeIssuer struct {
	*httptest.Server
	t        *testing.T
	key      *rsa.PrivateKey // publishes this key
	signWith *rsa.PrivateKey // signs with this one (another key: forged tokens)

	mu        sync.Mutex
	subject   string
	claims    map[string]any
	badNonce  bool
	pending   map[string]pendingAuth // code -> what /authorize saw
	exchanged int
}

type pendingAuth struct{ nonce, challenge, redirect string }

const (
	fakeClientID     = "kubelab-test"
	fakeClientSecret = "s3cret"
)

func newFakeIssuer(t *testing.T) *fakeIssuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIssuer{t: t, key: key, signWith: key, pending: map[string]pendingAuth{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                f.URL,
			"authorization_endpoint":                f.URL + "/authorize",
			"token_endpoint":                        f.URL + "/token",
			"jwks_uri":                              f.URL + "/keys",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		b64 := base64.RawURLEncoding
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
			"n": b64.EncodeToString(f.key.N.Bytes()),
			"e": b64.EncodeToString(big.NewInt(int64(f.key.E)).Bytes()),
		}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != fakeClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || !strings.Contains(q.Get("scope"), "openid") {
			http.Error(w, "bad authorize request: "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		code := auth.NewToken()
		f.mu.Lock()
		f.pending[code] = pendingAuth{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		f.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		f.mu.Lock()
		p, found := f.pending[r.PostFormValue("code")]
		delete(f.pending, r.PostFormValue("code"))
		f.exchanged++
		f.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		switch {
		case id != fakeClientID || secret != fakeClientSecret:
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		case !found || r.PostFormValue("redirect_uri") != p.redirect || base64.RawURLEncoding.EncodeToString(sum[:]) != p.challenge:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
			"id_token": f.idToken(p.nonce),
		})
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

// signIn sets who /authorize signs in next.
func (f *fakeIssuer) signIn(subject string, claims map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subject, f.claims = subject, claims
}

func (f *fakeIssuer) idToken(nonce string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.badNonce {
		nonce = "not-the-nonce"
	}
	now := time.Now()
	payload := map[string]any{"iss": f.URL, "sub": f.subject, "aud": fakeClientID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "nonce": nonce}
	for k, v := range f.claims {
		payload[k] = v
	}
	b64 := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "k1"})
	p, _ := json.Marshal(payload)
	signing := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, f.signWith, crypto.SHA256, sum[:])
	if err != nil {
		f.t.Fatal(err)
	}
	return signing + "." + b64.EncodeToString(sig)
}

func openOIDCServer(t *testing.T) (*testServer, *fakeIssuer) {
	t.Helper()
	idp := newFakeIssuer(t)
	o, err := auth.NewOIDC(t.Context(), auth.OIDCConfig{Issuer: idp.URL, ClientID: fakeClientID, ClientSecret: fakeClientSecret, RoleClaim: "kubelab_role"})
	if err != nil {
		t.Fatal(err)
	}
	ts := openServer(t, "", "testdata/lessons", func(log *slog.Logger) sandbox.Provider {
		return shell.New(t.TempDir(), log)
	}, func(cfg *server.Config) {
		cfg.Auth = server.AuthOIDC
		cfg.OIDC = o
	})
	return ts, idp
}

// ssoLogin clicks "Sign in with your organisation" and follows the
// redirects through the provider and back.
func (c *client) ssoLogin(next string) (int, string, string) {
	c.t.Helper()
	c.get("/login")
	return c.postForm("/auth/oidc", url.Values{"csrf_token": {c.csrf}, "next": {next}})
}

func TestOIDCSignIn(t *testing.T) {
	t.Parallel()
	ts, idp := openOIDCServer(t)
	ctx := t.Context()

	c := newBrowser(t, ts)
	if code, _ := c.get("/api/progress"); code != http.StatusUnauthorized {
		t.Errorf("signed out: %d, want 401", code)
	}
	_, page := c.get("/login")
	if !strings.Contains(string(page), `action="/auth/oidc"`) || strings.Contains(string(page), `type="password"`) {
		t.Error("the login page should offer the provider, not a password form")
	}

	// A new user with no role claim is a learner.
	idp.signIn("sub-1", map[string]any{"preferred_username": "lea", "email": "lea@example.com"})
	code, path, _ := c.ssoLogin("/lessons/demo/hello")
	if code != http.StatusOK || path != "/lessons/demo/hello" {
		t.Fatalf("sign-in: %d at %s", code, path)
	}
	u, err := ts.DB.UserByUsername(ctx, "lea")
	if err != nil || u.Role != "learner" || u.ExternalID != idp.URL+"#sub-1" || u.PasswordHash != "" {
		t.Fatalf("account: %+v %v", u, err)
	}
	if got := c.learnerID(t); got != u.ID {
		t.Errorf("learner ID %s, want the user's %s", got, u.ID)
	}
	if code, _ := c.get("/api/admin/users"); code != http.StatusForbidden {
		t.Errorf("learner on the admin API: %d, want 403", code)
	}

	// The role claim makes an instructor; the same subject is the same account.
	idp.signIn("sub-1", map[string]any{"preferred_username": "lea", "kubelab_role": "instructor"})
	c2 := newBrowser(t, ts)
	if code, _, _ := c2.ssoLogin(""); code != http.StatusOK {
		t.Fatalf("second sign-in: %d", code)
	}
	if got := c2.learnerID(t); got != u.ID {
		t.Errorf("second sign-in is learner %s, want %s", got, u.ID)
	}
	if code, body := c2.get("/api/admin/users"); code != http.StatusOK || !strings.Contains(string(body), `"role":"instructor"`) {
		t.Errorf("instructor on the admin API: %d %s", code, body)
	}

	// Logout revokes the session.
	code, path, _ = c2.postForm("/logout", url.Values{"csrf_token": {c2.csrf}})
	if code != http.StatusOK || path != "/login" {
		t.Errorf("logout: %d at %s", code, path)
	}
	if code, _ := c2.get("/api/progress"); code != http.StatusUnauthorized {
		t.Errorf("after logout: %d, want 401", code)
	}
}

func TestOIDCRefusesBadAnswers(t *testing.T) {
	t.Parallel()
	ts, idp := openOIDCServer(t)
	idp.signIn("sub-2", map[string]any{"preferred_username": "max"})
	c := newBrowser(t, ts)

	// Starting the sign-in is a POST: it needs the CSRF token.
	c.get("/login")
	if code, _, _ := c.postForm("/auth/oidc", url.Values{}); code != http.StatusForbidden {
		t.Errorf("start without a CSRF token: %d, want 403", code)
	}
	// A callback with no sign-in started, or another state.
	if code, _ := c.get("/auth/callback?code=x&state=y"); code != http.StatusUnauthorized {
		t.Errorf("callback out of the blue: %d, want 401", code)
	}
	// A token signed by another key.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp.mu.Lock()
	idp.signWith = other
	idp.mu.Unlock()
	if code, _, body := c.ssoLogin(""); code != http.StatusUnauthorized || !strings.Contains(body, "could not be verified") {
		t.Errorf("forged token: %d %.300s", code, body)
	}
	// A token for another sign-in (wrong nonce).
	idp.mu.Lock()
	idp.signWith, idp.badNonce = idp.key, true
	idp.mu.Unlock()
	if code, _, _ := c.ssoLogin(""); code != http.StatusUnauthorized {
		t.Errorf("wrong nonce: %d, want 401", code)
	}
	if _, err := ts.DB.UserByUsername(t.Context(), "max"); err == nil {
		t.Error("an account was made from a refused sign-in")
	}
	idp.mu.Lock()
	idp.badNonce = false
	idp.mu.Unlock()
	if code, _, _ := c.ssoLogin(""); code != http.StatusOK {
		t.Errorf("good answer after bad ones: %d", code)
	}
}
