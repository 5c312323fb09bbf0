package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"mime"
	"net/http"
)

// NewToken returns a new random session token: 32 bytes from crypto/rand,
// URL-safe base64. It goes in the cookie; only TokenHash goes in the store.
func NewToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// TokenHash is the stored form of a session token: hex SHA-256.
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// CSRFHeader and CSRFField carry the CSRF token in a request: the header
// from app.js, the form field from the login and logout forms.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

// CSRFToken derives the CSRF token of a session from the session's secret
// (the cookie value): HMAC-SHA256 keyed with the secret. A page on another
// origin can make the browser send the cookie but can neither read it nor
// read our pages, so it cannot produce this value. The token is neither the
// cookie nor the stored hash, and needs no storage of its own. An empty
// secret has no token.
func CSRFToken(secret string) string {
	if secret == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("kubelab csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// StateChanging reports whether the method changes state and so needs a
// CSRF token.
func StateChanging(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// CheckCSRF reports whether r carries want, in the X-CSRF-Token header or,
// for a form post, in the csrf_token field. An empty want never matches.
func CheckCSRF(r *http.Request, want string) bool {
	if want == "" {
		return false
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
			got = r.PostFormValue(CSRFField)
		}
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
