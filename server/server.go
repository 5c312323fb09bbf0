// Package server is kubelab's HTTP side: the pages (html/template), the JSON
// API, and the terminal websocket. It wires the lesson library, the checker,
// the sandbox Manager and the store together; each of those is reached
// through the few methods the server needs of it.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"kubelab/lessons"
	"kubelab/sandbox"
	"kubelab/server/auth"
	"kubelab/server/store"
	"kubelab/server/terminal"
)

// Library gives the current lesson catalog (reloaded from disk in dev mode).
type Library interface {
	Catalog(ctx context.Context) (*lessons.Catalog, error)
}

// Store is the persistence the server needs.
type Store interface {
	EnsureLearner(ctx context.Context, id string) error
	RecordAttempt(ctx context.Context, a store.Attempt) (int64, error)
	RecordHint(ctx context.Context, learner, lesson string, step, index int) (int, error)
	Progress(ctx context.Context, learner string) ([]store.StepProgress, error)
	LessonProgress(ctx context.Context, learner, lesson string) ([]store.StepProgress, error)
	HintsShown(ctx context.Context, learner, lesson string, step int) ([]int, error)
}

// Sandboxes is what the server needs of the sandbox Manager.
type Sandboxes interface {
	Acquire(ctx context.Context, spec sandbox.Spec, progress sandbox.ProgressFunc) (sandbox.Sandbox, error)
	Lookup(owner string) (sandbox.Sandbox, bool)
	Attach(owner string) (detach func())
	Touch(owner string)
	// Admit says whether a sandbox could be made for owner now (nil when
	// they have one), else a *sandbox.RetryError.
	Admit(owner string) error
	Lifetime(owner string) (sandbox.Lifetime, bool)
	Extend(owner string) (sandbox.Lifetime, error)
}

// Config is the server's configuration; zero values take the defaults.
type Config struct {
	Addr           string        // listen address, default 127.0.0.1:8080
	AllowedOrigins []string      // extra origins allowed on the websocket
	Web            fs.FS         // templates/ and dist/ (web.Files)
	DevTemplates   bool          // re-parse templates on every request
	CheckTimeout   time.Duration // upper bound for one check request, default 5m
	WarnBefore     time.Duration // the page warns this long before a sandbox ends, default 15m
	Logger         *slog.Logger

	Auth       string           // AuthNone (default), AuthLocal or AuthOIDC
	Accounts   Accounts         // users and sessions; required with AuthLocal and AuthOIDC
	OIDC       *auth.OIDC       // the identity provider; required with AuthOIDC
	SessionTTL time.Duration    // how long a sign-in lasts, default 7 days
	Now        func() time.Time // clock for sessions and login limits, default time.Now
}

// Accounts is what the server needs of the store for users and sessions.
type Accounts interface {
	UserByUsername(ctx context.Context, username string) (store.User, error)
	UserByID(ctx context.Context, id string) (store.User, error)
	Users(ctx context.Context) ([]store.User, error)
	CreateSession(ctx context.Context, s store.Session) error
	Session(ctx context.Context, id string) (store.Session, error)
	TouchSession(ctx context.Context, id string, at time.Time) error
	RevokeSession(ctx context.Context, id string) error
	ExternalUser(ctx context.Context, externalID, username, role string, setRole bool) (store.User, error)
	// Failed sign-ins per key, kept across restarts.
	LoginLimits(ctx context.Context) ([]store.LoginLimit, error)
	SaveLoginLimit(ctx context.Context, l store.LoginLimit) error
}

// Server serves kubelab over HTTP.
type Server struct {
	cfg       Config
	lib       Library
	store     Store
	sandboxes Sandboxes
	hub       *terminal.Hub
	log       *slog.Logger
	pages     *pages

	setupMu   sync.Mutex
	setupDone map[string]bool // sandbox ID + lesson ID -> setup ran
	restore   restorer
	started   time.Time // sandboxes made before were adopted: their state is theirs

	userLimit *auth.Limiter // failed logins per username
	addrLimit *auth.Limiter // failed logins per client address (a classroom may share one)
	dummyOnce sync.Once
	dummy     string // a hash to verify against for unknown usernames
}

// New builds a Server. hub carries the terminal sessions.
func New(cfg Config, lib Library, st Store, sb Sandboxes, hub *terminal.Hub) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.WarnBefore == 0 {
		cfg.WarnBefore = DefaultWarnBefore
	}
	if cfg.CheckTimeout == 0 {
		cfg.CheckTimeout = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Web == nil {
		return nil, errors.New("server: Config.Web is required")
	}
	switch cfg.Auth {
	case "":
		cfg.Auth = AuthNone
	case AuthNone:
	case AuthLocal, AuthOIDC:
		if cfg.Accounts == nil {
			return nil, fmt.Errorf("server: Config.Accounts is required with --auth %s", cfg.Auth)
		}
		if cfg.Auth == AuthOIDC && cfg.OIDC == nil {
			return nil, errors.New("server: Config.OIDC is required with --auth oidc")
		}
	default:
		return nil, fmt.Errorf("server: unknown auth mode %q (want none, local or oidc)", cfg.Auth)
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p, err := newPages(cfg.Web, cfg.DevTemplates)
	if err != nil {
		return nil, err
	}
	userLimit := auth.NewLimiter()
	userLimit.Now = cfg.Now
	addrLimit := auth.NewLimiter()
	addrLimit.Max = 20
	addrLimit.Now = cfg.Now
	if cfg.Accounts != nil {
		if err := keepLoginLimits(cfg.Accounts, cfg.Logger, map[string]*auth.Limiter{userKeyPrefix: userLimit, addrKeyPrefix: addrLimit}); err != nil {
			return nil, err
		}
	}
	return &Server{
		cfg: cfg, lib: lib, store: st, sandboxes: sb, hub: hub,
		log: cfg.Logger, pages: p, setupDone: map[string]bool{}, started: cfg.Now(),
		userLimit: userLimit, addrLimit: addrLimit,
	}, nil
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// dummyHash is a password hash with the default cost, made once.
func (s *Server) dummyHash() string {
	s.dummyOnce.Do(func() {
		s.dummy, _ = auth.HashPassword(auth.NewToken())
	})
	return s.dummy
}

// Handler returns the HTTP handler with every route.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /static/", s.static())
	mux.HandleFunc("GET /{$}", s.handleCatalogPage)
	mux.HandleFunc("GET /lessons/{track}/{slug}", s.handleLessonPage)
	mux.HandleFunc("GET /api/tracks", s.handleTracks)
	mux.HandleFunc("GET /api/lessons/{track}/{slug}", s.handleLesson)
	mux.HandleFunc("POST /api/lessons/{track}/{slug}/check", s.handleCheck)
	mux.HandleFunc("POST /api/lessons/{track}/{slug}/hint", s.handleHint)
	mux.HandleFunc("GET /api/progress", s.handleProgress)
	s.drillRoutes(mux)
	s.watchRoutes(mux)
	s.classroomRoutes(mux)
	if s.cfg.Accounts != nil {
		mux.Handle("GET /api/admin/users", s.requireRole(store.RoleInstructor, s.handleUsers))
	}
	if s.cfg.Auth != AuthNone {
		mux.HandleFunc("GET /login", s.handleLoginPage)
		mux.HandleFunc("POST /logout", s.handleLogout)
	}
	switch s.cfg.Auth {
	case AuthLocal:
		mux.HandleFunc("POST /login", s.handleLogin)
	case AuthOIDC:
		mux.HandleFunc("POST /auth/oidc", s.handleOIDCStart)
		mux.HandleFunc("GET /auth/callback", s.handleOIDCCallback)
	}
	mux.HandleFunc("GET /api/sandbox", s.handleSandboxState)
	mux.HandleFunc("POST /api/sandbox/extend", s.handleSandboxExtend)
	mux.HandleFunc("GET /ws/terminal", s.handleTerminal)
	mux.HandleFunc("/", s.handleNotFound)
	return s.withIdentity(securityHeaders(s.requireLogin(s.requireCSRF(mux))))
}

// Serve listens on cfg.Addr until ctx is cancelled, then shuts down
// gracefully: new connections are refused, requests in flight get up to
// grace to finish, terminal sessions are closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.hub.Shutdown(sctx); err != nil {
		s.log.Warn("close terminals", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, "ok")
}

// securityHeaders sets headers every response should carry.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}
