package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCConfig configures sign-in through an OpenID Connect provider.
type OIDCConfig struct {
	Issuer       string // e.g. https://accounts.example.com
	ClientID     string
	ClientSecret string
	// RedirectURL is this server's callback as the provider knows it
	// (https://lab.example.com/auth/callback). Empty: derived from each
	// request's host, which suits a direct deployment but not every proxy.
	RedirectURL string
	// RoleClaim names a claim of the ID token holding the user's kubelab
	// role (learner, instructor or admin). Empty, absent or another value:
	// new users are learners and existing ones keep their role.
	RoleClaim string
	// HTTPClient talks to the provider; nil: http.DefaultClient.
	HTTPClient *http.Client
}

// OIDC signs users in with an OpenID Connect provider: the authorization
// code flow with PKCE, a state and a nonce.
type OIDC struct {
	cfg      OIDCConfig
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

// Identity is what the provider says about a user who signed in.
type Identity struct {
	ExternalID string // issuer + "#" + subject: stable and unique
	Username   string // preferred_username, else email, else subject
	Role       string // from RoleClaim; "" if the token has none
}

// NewOIDC discovers the provider's endpoints and keys from the issuer's
// /.well-known/openid-configuration.
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("oidc: the issuer and the client ID are required")
	}
	p, err := oidc.NewProvider(cfg.clientContext(ctx), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discover %s: %w", cfg.Issuer, err)
	}
	return &OIDC{cfg: cfg, provider: p, verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID})}, nil
}

func (c OIDCConfig) clientContext(ctx context.Context) context.Context {
	if c.HTTPClient != nil {
		return oidc.ClientContext(ctx, c.HTTPClient)
	}
	return ctx
}

// RedirectURL is the callback URL for a request to this server.
func (o *OIDC) RedirectURL(r *http.Request) string {
	if o.cfg.RedirectURL != "" {
		return o.cfg.RedirectURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/auth/callback"
}

func (o *OIDC) oauth2(redirect string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     o.cfg.ClientID,
		ClientSecret: o.cfg.ClientSecret,
		Endpoint:     o.provider.Endpoint(),
		RedirectURL:  redirect,
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email"},
	}
}

// AuthURL is where to send the browser to sign in. state, nonce and
// verifier are random values the caller keeps (in a cookie) for Exchange.
func (o *OIDC) AuthURL(redirect, state, nonce, verifier string) string {
	return o.oauth2(redirect).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
}

// Exchange trades the callback's code for tokens, verifies the ID token
// (signature, issuer, audience, expiry, nonce) and returns who signed in.
func (o *OIDC) Exchange(ctx context.Context, redirect, code, nonce, verifier string) (Identity, error) {
	ctx = o.cfg.clientContext(ctx)
	tok, err := o.oauth2(redirect).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("oidc: exchange the code: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return Identity{}, errors.New("oidc: the token response has no id_token")
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("oidc: verify the ID token: %w", err)
	}
	if idt.Nonce != nonce {
		return Identity{}, errors.New("oidc: the ID token's nonce does not match")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("oidc: read the ID token's claims: %w", err)
	}
	id := Identity{ExternalID: idt.Issuer + "#" + idt.Subject, Username: idt.Subject}
	for _, k := range []string{"preferred_username", "email"} {
		if v, _ := claims[k].(string); strings.TrimSpace(v) != "" {
			id.Username = strings.TrimSpace(v)
			break
		}
	}
	if o.cfg.RoleClaim != "" {
		id.Role, _ = claims[o.cfg.RoleClaim].(string)
	}
	return id, nil
}
