package auth

import (
	"sync"
	"time"
)

// Limiter counts failed logins per key (an account, a client address) and
// locks a key out after too many: Max failures within Window lock it for
// Lockout. It lives in memory: a restart forgets the counts, which only
// gives an attacker one more round of Max tries.
type Limiter struct {
	Max     int
	Window  time.Duration
	Lockout time.Duration
	Now     func() time.Time // nil: time.Now

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
	}
	// Forget keys with nothing left to remember, so the map stays small.
	for k, st := range l.keys {
		if !st.lockedUntil.After(now) && (len(st.failures) == 0 || now.Sub(st.failures[len(st.failures)-1]) >= l.Window) {
			delete(l.keys, k)
		}
	}
}

// Reset forgets the failures of keys (after a successful login). A lock in
// force stays.
func (l *Limiter) Reset(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if st := l.keys[k]; st != nil {
			st.failures = nil
		}
	}
}
