package sandbox

import (
	"errors"
	"fmt"
	"time"
)

// Lifetimes: every sandbox ends at its expiry however busy it is (the
// Manager's MaxLifetime after it was handed to its owner), unless its
// owner extends it, a few times at most. And each owner may only have so
// many sandboxes created for them in a window, so that a learner who
// reloads or resets in a loop cannot keep the server busy creating.

// Lifetime defaults.
const (
	DefaultExtendBy             = time.Hour
	DefaultMaxExtensions        = 3
	DefaultMaxCreationsPerOwner = 10
	DefaultCreationWindow       = time.Hour
)

// ErrRateLimited is returned when an owner asked for more sandbox
// creations in the window than allowed; the error is a *RetryError.
var ErrRateLimited = errors.New("too many sandboxes created")

// ErrNoExtension is returned by Extend when no extension is left.
var ErrNoExtension = errors.New("no extension left")

// ErrNoSandbox is returned for an owner with no sandbox.
var ErrNoSandbox = errors.New("no sandbox")

// RetryError is a refusal that passes with time: After is when to try again.
type RetryError struct {
	Err   error // ErrRateLimited or ErrQuota
	After time.Duration
	Msg   string
}

func (e *RetryError) Error() string { return e.Msg }
func (e *RetryError) Unwrap() error { return e.Err }

// Lifetime is what an owner's sandbox has left to live.
type Lifetime struct {
	ID             string
	CreatedAt      time.Time // when it was made or handed to its owner
	ExpiresAt      time.Time // when it is deleted, attached or not
	IdleTimeout    time.Duration
	ExtendBy       time.Duration // what one extension adds
	ExtensionsLeft int
}

// Lifetime returns owner's sandbox's lifetime, if they have a sandbox.
func (m *Manager) Lifetime(owner string) (Lifetime, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[owner]
	if e == nil || e.sb == nil {
		return Lifetime{}, false
	}
	return m.lifetimeOf(e), true
}

// lifetimeOf describes e. Called with m.mu held.
func (m *Manager) lifetimeOf(e *entry) Lifetime {
	return Lifetime{
		ID: e.sb.ID(), CreatedAt: e.created, ExpiresAt: m.expiry(e),
		IdleTimeout: m.opts.IdleTimeout, ExtendBy: m.opts.ExtendBy,
		ExtensionsLeft: max(m.opts.MaxExtensions-m.extensionsUsed(e), 0),
	}
}

// extensionsUsed is how many extensions e's expiry holds: each added
// ExtendBy beyond MaxLifetime after creation (one granted after the old end
// had passed adds a little more, which still counts once). Derived, so a
// restarted server that adopts e counts the same.
func (m *Manager) extensionsUsed(e *entry) int {
	if e.expires.IsZero() {
		return 0
	}
	return max(int((e.expires.Sub(e.created)-m.opts.MaxLifetime)/m.opts.ExtendBy), 0)
}

// expiry is when e ends. Called with m.mu held.
func (m *Manager) expiry(e *entry) time.Time {
	if !e.expires.IsZero() {
		return e.expires
	}
	return e.created.Add(m.opts.MaxLifetime)
}

// Extend moves the end of owner's sandbox ExtendBy later than it was (and
// at least ExtendBy from now), once per extension left. It returns the
// new lifetime, or an error wrapping ErrNoSandbox or ErrNoExtension.
func (m *Manager) Extend(owner string) (Lifetime, error) {
	m.mu.Lock()
	e := m.entries[owner]
	if e == nil || e.sb == nil || m.closed {
		m.mu.Unlock()
		return Lifetime{}, fmt.Errorf("extend the sandbox of %s: %w", owner, ErrNoSandbox)
	}
	if m.extensionsUsed(e) >= m.opts.MaxExtensions {
		lt := m.lifetimeOf(e)
		m.mu.Unlock()
		return lt, fmt.Errorf("extend the sandbox of %s: all %d extensions used: %w", owner, m.opts.MaxExtensions, ErrNoExtension)
	}
	now := m.now()
	e.expires = maxTime(m.expiry(e), now).Add(m.opts.ExtendBy)
	e.active = now
	lt := m.lifetimeOf(e)
	r := Record{ID: e.sb.ID(), Owner: owner, State: RecordReady, Spec: e.spec, CreatedAt: e.created, LastUsed: e.active, ExpiresAt: e.expires}
	m.mu.Unlock()
	m.saveRecord(r)
	m.log.Info("sandbox extended", "user_id", owner, "sandbox_id", lt.ID, "expires_at", lt.ExpiresAt, "extensions_left", lt.ExtensionsLeft)
	return lt, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Admit reports whether a sandbox could be made for owner now, when they
// have none: nil if they have one (or one is being made) or if a creation
// would start, else a *RetryError saying why not and when to try again.
func (m *Manager) Admit(owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries[owner] != nil {
		return nil
	}
	return m.admitCreation(owner)
}

// admitCreation refuses a creation for owner beyond MaxSandboxes (unless a
// warm sandbox waits) or beyond the owner's creations in the window.
// Called with m.mu held.
func (m *Manager) admitCreation(owner string) error {
	if len(m.pool) == 0 {
		if limit := m.opts.MaxSandboxes; limit > 0 && len(m.entries)+len(m.pool)+m.poolCreating >= limit {
			return &RetryError{Err: ErrQuota, After: quotaRetry,
				Msg: fmt.Sprintf("acquire sandbox for %s: all %d sandboxes are in use: %v", owner, limit, ErrQuota)}
		}
	}
	window := m.opts.CreationWindow
	recent := m.created[owner][:0]
	now := m.now()
	for _, t := range m.created[owner] {
		if now.Sub(t) < window {
			recent = append(recent, t)
		}
	}
	if len(recent) == 0 {
		delete(m.created, owner)
	} else {
		m.created[owner] = recent
	}
	if len(recent) >= m.opts.MaxCreationsPerOwner {
		after := recent[0].Add(window).Sub(now)
		return &RetryError{Err: ErrRateLimited, After: after,
			Msg: fmt.Sprintf("acquire sandbox for %s: %d sandboxes were created for you in the last %s: %v", owner, len(recent), window, ErrRateLimited)}
	}
	return nil
}

// quotaRetry is the Retry-After given when every sandbox is in use: idle
// ones are culled within a minute of their timeout.
const quotaRetry = 30 * time.Second

// noteCreation counts a creation for owner. Called with m.mu held.
func (m *Manager) noteCreation(owner string) {
	m.created[owner] = append(m.created[owner], m.now())
}
