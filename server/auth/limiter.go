package auth

import (
	"slices"
	"sync"
	"time"
)

// Limiter counts failed logins per key (an account, a client address) and
// locks a key out after too many: Max failures within Window lock it for
// Lockout. It counts in memory; Saved, when set, is told every change so
// that a store can keep the counts, and Restore gives them back after a
// restart.
type Limiter struct {
	Max     int
	Window  time.Duration
	Lockout time.Duration
	Now     func() time.Time // nil: time.Now
	// Saved, when set, is called with a key's new state each time it
	// changes (no failures and a zero lock: the key is forgotten), in the
	// order of the changes.
	Saved func(key string, failures []time.Time, lockedUntil time.Time)

	mu   sync.Mutex
	keys map[string]*limitState
}

type limitState struct {
	failures    []time.Time // within Window, oldest first
	lockedUntil time.Time
}

// NewLimiter returns a limiter with the defaults: 5 failures in 15 minutes
// lock the key for 15 minutes.
func NewLimiter() *Limiter {
	return &Limiter{Max: 5, Window: 15 * time.Minute, Lockout: 15 * time.Minute}
}

func (l *Limiter) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Locked returns how long the longest lock among keys still runs, or 0 if
// none of them is locked.
func (l *Limiter) Locked(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, k := range keys {
		st := l.keys[k]
		if st == nil {
			continue
		}
		if d := st.lockedUntil.Sub(now); d > wait {
			wait = d
		}
	}
	return wait
}

// Restore sets key's failures (oldest first) and lock, as Saved was told
// them before a restart; what has expired since is dropped.
func (l *Limiter) Restore(key string, failures []time.Time, lockedUntil time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	st := &limitState{lockedUntil: lockedUntil}
	for _, t := range failures {
		if now.Sub(t) < l.Window {
			st.failures = append(st.failures, t)
		}
	}
	if len(st.failures) == 0 && !lockedUntil.After(now) {
		return
	}
	if l.keys == nil {
		l.keys = map[string]*limitState{}
	}
	l.keys[key] = st
}

// save tells Saved of key's state. With l.mu held.
func (l *Limiter) save(key string, st *limitState) {
	if l.Saved == nil {
		return
	}
	if st == nil || len(st.failures) == 0 && !st.lockedUntil.After(l.now()) {
		l.Saved(key, nil, time.Time{})
		return
	}
	l.Saved(key, slices.Clone(st.failures), st.lockedUntil)
}

// Fail records a failure for every key, locking those that reach Max.
func (l *Limiter) Fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = map[string]*limitState{}
	}
	now := l.now()
	for _, k := range keys {
		st := l.keys[k]
		if st == nil {
			st = &limitState{}
			l.keys[k] = st
		}
		kept := st.failures[:0]
		for _, t := range st.failures {
			if now.Sub(t) < l.Window {
				kept = append(kept, t)
			}
		}
		st.failures = append(kept, now)
		if len(st.failures) >= l.Max {
			st.lockedUntil = now.Add(l.Lockout)
			st.failures = nil
		}
		l.save(k, st)
	}
	// Forget keys with nothing left to remember, so the map stays small.
	for k, st := range l.keys {
		if !st.lockedUntil.After(now) && (len(st.failures) == 0 || now.Sub(st.failures[len(st.failures)-1]) >= l.Window) {
			delete(l.keys, k)
			l.save(k, nil)
		}
	}
}

// Reset forgets the failures of keys (after a successful login). A lock in
// force stays.
func (l *Limiter) Reset(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if st := l.keys[k]; st != nil && len(st.failures) > 0 {
			st.failures = nil
			l.save(k, st)
		}
	}
}
