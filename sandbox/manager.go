package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ManagerOptions are the Manager's limits. Zero values take the defaults.
type ManagerOptions struct {
	MaxSandboxes int           // sandboxes alive or being created; 0 = unlimited; ErrQuota beyond
	MaxCreating  int           // concurrent creations and grows; default 2
	IdleTimeout  time.Duration // no terminal attached and no activity for this long: deleted; default 30m
	MaxLifetime  time.Duration // deleted this long after creation, attached or not; default 4h
	Logger       *slog.Logger  // nil discards
	Now          func() time.Time
	// Registry, when set, persists a record of every sandbox so Reconcile
	// can adopt them after a restart and delete orphans.
	Registry Registry
	// WarmPool is how many ready sandboxes of WarmSpec are kept with no
	// owner, so the next learner gets one at once; 0 disables the pool.
	WarmPool int
	WarmSpec Spec
	// IDPrefix starts the ID of every sandbox this Manager creates, and
	// Reconcile only ever touches sandboxes whose ID starts with it: two
	// servers on one Docker host (each with its own data directory and
	// prefix) leave each other's sandboxes alone. Default DefaultIDPrefix.
	IDPrefix string
	// ExtendBy is what one extension adds to a sandbox's life, at most
	// MaxExtensions times (defaults DefaultExtendBy, DefaultMaxExtensions;
	// a negative MaxExtensions allows none).
	ExtendBy      time.Duration
	MaxExtensions int
	// MaxCreationsPerOwner sandboxes may be created (or handed out of the
	// warm pool) for one owner per CreationWindow; more get a *RetryError
	// wrapping ErrRateLimited. Defaults DefaultMaxCreationsPerOwner and
	// DefaultCreationWindow.
	MaxCreationsPerOwner int
	CreationWindow       time.Duration
}

// Manager defaults.
const (
	DefaultMaxCreating = 2
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxLifetime = 4 * time.Hour
	DefaultIDPrefix    = "kl-"
)

// cleanupTimeout bounds the deletion of what a failed creation made, which
// runs even when the caller has gone.
const cleanupTimeout = 2 * time.Minute

// Stats counts a Manager's sandboxes.
type Stats struct {
	Live     int // sandboxes that exist (a sandbox being grown is live), warm ones included
	Creating int // creations and grows in flight, warm ones included
	Warm     int // ready sandboxes in the warm pool
}

// Manager is the policy over one Provider: one sandbox per owner, made on
// first use and grown when a lesson needs more, a cap on how many exist and
// on how many are made at once, and the deletion of idle and over-age
// sandboxes.
//
// A creation belongs to the Manager, not to the caller that started it:
// callers that give up stop waiting, but the creation completes (a learner
// who reloads the page then finds the sandbox ready, and an abandoned one is
// culled as idle). Shutdown cancels creations in flight.
type Manager struct {
	p     Provider
	opts  ManagerOptions
	log   *slog.Logger
	now   func() time.Time
	slots chan struct{} // one token per creation or grow in flight

	ctx    context.Context // creations run under it; Shutdown cancels it
	cancel context.CancelFunc
	ops    sync.WaitGroup // creations and grows in flight

	mu           sync.Mutex
	closed       bool
	entries      map[string]*entry      // by owner
	attached     map[string]int         // terminals attached, by owner
	created      map[string][]time.Time // recent creations, by owner (rate limit)
	pool         []*entry               // warm sandboxes, no owner yet
	poolCreating int                    // warm creations in flight
	poolFailures atomic.Int64           // warm creations that failed
	refill       chan struct{}          // wakes Run to top the pool up

	mine      sync.Map  // IDs this Manager made or adopted: never orphans
	lastSweep time.Time // when Run last looked for orphans
}

// entry is one owner's sandbox, or the creation of it.
type entry struct {
	owner   string
	sb      Sandbox // nil until the first creation succeeds
	spec    Spec    // what sb was built or grown to
	created time.Time
	active  time.Time
	op      *operation // creation or grow in flight
	// expires is when the sandbox is deleted; zero: created+MaxLifetime.
	// The extensions granted are counted from it (extensionsUsed).
	expires time.Time
}

// NewManager returns a Manager of p's sandboxes.
func NewManager(p Provider, opts ManagerOptions) *Manager {
	if opts.MaxCreating <= 0 {
		opts.MaxCreating = DefaultMaxCreating
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxLifetime <= 0 {
		opts.MaxLifetime = DefaultMaxLifetime
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IDPrefix == "" {
		opts.IDPrefix = DefaultIDPrefix
	}
	if opts.ExtendBy <= 0 {
		opts.ExtendBy = DefaultExtendBy
	}
	switch {
	case opts.MaxExtensions == 0:
		opts.MaxExtensions = DefaultMaxExtensions
	case opts.MaxExtensions < 0:
		opts.MaxExtensions = 0
	}
	if opts.MaxCreationsPerOwner <= 0 {
		opts.MaxCreationsPerOwner = DefaultMaxCreationsPerOwner
	}
	if opts.CreationWindow <= 0 {
		opts.CreationWindow = DefaultCreationWindow
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		p:        p,
		opts:     opts,
		log:      opts.Logger.With("provider", p.Name()),
		now:      opts.Now,
		slots:    make(chan struct{}, opts.MaxCreating),
		ctx:      ctx,
		cancel:   cancel,
		entries:  make(map[string]*entry),
		attached: make(map[string]int),
		created:  make(map[string][]time.Time),
		refill:   make(chan struct{}, 1),
	}
}

// Acquire returns spec.Owner's sandbox, creating it, or growing it when spec
// needs more than it has, and reporting progress meanwhile. Concurrent
// calls for one owner share one creation: all get the same sandbox and all
// get its progress. A failed creation deletes what it made and returns an
// error that says why; a failed grow leaves the sandbox as it was.
func (m *Manager) Acquire(ctx context.Context, spec Spec, progress ProgressFunc) (Sandbox, error) {
	if spec.Owner == "" {
		return nil, errors.New("acquire sandbox: no owner")
	}
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, fmt.Errorf("acquire sandbox for %s: %w", spec.Owner, ErrClosed)
		}
		e := m.entries[spec.Owner]
		switch {
		case e == nil && len(m.pool) > 0:
			if err := m.admitCreation(spec.Owner); err != nil {
				m.mu.Unlock()
				return nil, err
			}
			m.noteCreation(spec.Owner)
			m.takeWarm(spec.Owner)
			m.mu.Unlock()
			m.log.Info("handed out a warm sandbox", "user_id", spec.Owner)
			if progress != nil {
				progress(Progress{Stage: "ready", Message: "Your sandbox is ready.", Percent: 100})
			}
			m.saveOwner(spec.Owner)
			continue // it may still need to grow for this lesson
		case e == nil:
			if err := m.admitCreation(spec.Owner); err != nil {
				m.mu.Unlock()
				return nil, err
			}
			m.noteCreation(spec.Owner)
			e = &entry{owner: spec.Owner, op: newOperation()}
			m.entries[spec.Owner] = e
			m.ops.Add(1)
			go m.create(e, e.op, spec)
		case e.op != nil:
			// Join the creation or grow in flight below.
		case e.spec.Covers(spec):
			e.active = m.now()
			sb := e.sb
			m.mu.Unlock()
			return sb, nil
		default:
			e.op = newOperation()
			m.ops.Add(1)
			go m.grow(e, e.op, e.sb, e.spec.Merge(spec))
		}
		op := e.op
		remove := op.subscribe(progress)
		m.mu.Unlock()

		select {
		case <-op.done:
			remove()
		case <-ctx.Done():
			remove()
			return nil, fmt.Errorf("acquire sandbox for %s: %w", spec.Owner, ctx.Err())
		}
		if op.err != nil {
			// A grow that failed for more than this caller needs still
			// leaves a sandbox that may do.
			if sb, ok := m.covering(spec); ok {
				return sb, nil
			}
			return nil, op.err
		}
		if op.spec.Covers(spec) {
			return op.sb, nil
		}
		// A creation another caller started was for less: loop to grow.
	}
}

// covering returns owner's sandbox if it exists and covers spec.
func (m *Manager) covering(spec Spec) (Sandbox, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[spec.Owner]
	if e == nil || e.sb == nil || e.op != nil || !e.spec.Covers(spec) {
		return nil, false
	}
	e.active = m.now()
	return e.sb, true
}

// create makes e's first sandbox.
func (m *Manager) create(e *entry, op *operation, spec Spec) {
	defer m.ops.Done()
	log := m.log.With("user_id", e.owner)
	id := m.newID()
	err := m.acquireSlot(op)
	var sb Sandbox
	if err == nil {
		log.Info("creating sandbox", "sandbox_id", id, "kind", spec.Kind.String())
		now := m.now()
		m.saveRecord(Record{ID: id, Owner: e.owner, State: RecordCreating, Spec: spec, CreatedAt: now, LastUsed: now})
		sb, err = m.p.Create(m.ctx, id, spec, op.report)
		<-m.slots
		if err == nil && sb == nil {
			err = errors.New("provider returned no sandbox")
		}
		if err != nil {
			if derr := m.cleanup(id, log); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}

	m.mu.Lock()
	if err != nil {
		if m.entries[e.owner] == e {
			delete(m.entries, e.owner)
		}
		e.op = nil
		m.mu.Unlock()
		log.Error("create sandbox", "sandbox_id", id, "err", err)
		op.finish(fmt.Errorf("create sandbox for %s: %w", e.owner, err))
		return
	}
	now := m.now()
	e.sb, e.spec, e.created, e.active, e.op = sb, spec, now, now, nil
	m.mu.Unlock()
	m.saveRecord(Record{ID: sb.ID(), Owner: e.owner, State: RecordReady, Spec: spec, CreatedAt: now, LastUsed: now})
	log.Info("sandbox ready", "sandbox_id", sb.ID())
	op.report(Progress{Stage: "ready", Message: "Your sandbox is ready.", Percent: 100})
	op.succeed(sb, spec)
}

// grow brings e's sandbox up to spec.
func (m *Manager) grow(e *entry, op *operation, sb Sandbox, spec Spec) {
	defer m.ops.Done()
	log := m.log.With("user_id", e.owner, "sandbox_id", sb.ID())
	err := m.acquireSlot(op)
	var grown Sandbox
	if err == nil {
		log.Info("growing sandbox", "kind", spec.Kind.String())
		grown, err = m.p.Grow(m.ctx, sb, spec, op.report)
		<-m.slots
		if err == nil && grown == nil {
			err = errors.New("provider returned no sandbox")
		}
	}

	m.mu.Lock()
	e.op = nil
	if err != nil {
		m.mu.Unlock()
		log.Error("grow sandbox", "err", err)
		op.finish(fmt.Errorf("grow sandbox %s for %s: %w", sb.ID(), e.owner, err))
		return
	}
	e.sb, e.spec, e.active = grown, spec, m.now()
	created := e.created
	m.mu.Unlock()
	m.saveRecord(Record{ID: grown.ID(), Owner: e.owner, State: RecordReady, Spec: spec, CreatedAt: created, LastUsed: m.now()})
	op.report(Progress{Stage: "ready", Message: "Your sandbox is ready.", Percent: 100})
	op.succeed(grown, spec)
}

// acquireSlot waits for one of MaxCreating slots, telling the waiters why
// they wait.
func (m *Manager) acquireSlot(op *operation) error {
	select {
	case m.slots <- struct{}{}:
		return nil
	default:
	}
	op.report(Progress{Stage: "queued", Message: "Waiting for other sandboxes to finish starting.", Percent: 0})
	select {
	case m.slots <- struct{}{}:
		return nil
	case <-m.ctx.Done():
		return m.ctx.Err()
	}
}

// Lookup returns owner's sandbox if it exists (a sandbox being created does
// not yet).
func (m *Manager) Lookup(owner string) (Sandbox, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[owner]
	if e == nil || e.sb == nil {
		return nil, false
	}
	return e.sb, true
}

// Attach records that a terminal of owner's is open: the sandbox is not
// idle while one is. Call detach when it closes; calling it again does
// nothing. Attach may come before the sandbox exists.
func (m *Manager) Attach(owner string) (detach func()) {
	m.mu.Lock()
	m.attached[owner]++
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.attached[owner]--; m.attached[owner] <= 0 {
				delete(m.attached, owner)
			}
			if e := m.entries[owner]; e != nil {
				e.active = m.now()
			}
		})
	}
}

// Touch records activity in owner's sandbox (a check ran), which resets
// its idle time.
func (m *Manager) Touch(owner string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[owner]; e != nil {
		e.active = m.now()
	}
}

// Release deletes owner's sandbox now, after a creation or grow in flight
// has finished. Releasing an owner without a sandbox is not an error.
func (m *Manager) Release(ctx context.Context, owner string) error {
	for {
		m.mu.Lock()
		e := m.entries[owner]
		if e == nil {
			m.mu.Unlock()
			return nil
		}
		if op := e.op; op != nil {
			m.mu.Unlock()
			select {
			case <-op.done:
				continue
			case <-ctx.Done():
				return fmt.Errorf("release sandbox of %s: %w", owner, ctx.Err())
			}
		}
		delete(m.entries, owner)
		m.mu.Unlock()
		return m.delete(ctx, e, "released")
	}
}

func (m *Manager) delete(ctx context.Context, e *entry, why string) error {
	m.log.Info("deleting sandbox", "user_id", e.owner, "sandbox_id", e.sb.ID(), "reason", why)
	m.saveRecord(Record{ID: e.sb.ID(), Owner: e.owner, State: RecordDeleting, Spec: e.spec, CreatedAt: e.created, LastUsed: e.active})
	if err := m.p.Delete(ctx, e.sb.ID()); err != nil {
		return fmt.Errorf("delete sandbox %s of %s: %w", e.sb.ID(), e.owner, err)
	}
	m.deleteRecord(e.sb.ID())
	return nil
}

// Run culls idle and over-age sandboxes (see Cull) now and then until ctx
// is done or the Manager shuts down, and returns nil.
func (m *Manager) Run(ctx context.Context) error {
	every := min(max(min(m.opts.IdleTimeout, m.opts.MaxLifetime)/10, time.Second), time.Minute)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := m.Cull(ctx); err != nil {
			m.log.Error("cull sandboxes", "err", err)
		}
		if m.now().Sub(m.lastSweep) >= orphanSweep {
			m.lastSweep = m.now()
			if n, err := m.SweepOrphans(ctx); err != nil {
				m.log.Error("sweep orphaned sandboxes", "err", err)
			} else if n > 0 {
				m.log.Info("orphaned sandboxes deleted", "count", n)
			}
		}
		m.fillPool()
		select {
		case <-ctx.Done():
			return nil
		case <-m.ctx.Done():
			return nil
		case <-tick.C:
		case <-m.refill:
		}
	}
}

// orphanSweep is how often Run looks for orphans that appeared after
// Reconcile: a server killed while it created a sandbox leaves docker and
// kind commands running that finish their containers after the restart.
const orphanSweep = 20 * time.Second

// SweepOrphans deletes the sandboxes with this Manager's ID prefix that it
// neither made nor adopted, and returns how many. Reconcile judges what
// exists at start-up; this catches what a killed predecessor's commands
// were still making then.
func (m *Manager) SweepOrphans(ctx context.Context) (int, error) {
	live, err := m.p.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("list sandboxes: %w", err)
	}
	n := 0
	var errs []error
	for _, sb := range live {
		id := sb.ID()
		if !strings.HasPrefix(id, m.opts.IDPrefix) {
			continue
		}
		if _, ok := m.mine.Load(id); ok {
			continue
		}
		m.log.Info("deleting orphaned sandbox", "sandbox_id", id)
		if err := m.p.Delete(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("delete orphan %s: %w", id, err))
			continue
		}
		m.deleteRecord(id)
		n++
	}
	return n, errors.Join(errs...)
}

// Cull deletes the sandboxes that no terminal is attached to and that saw
// no activity for IdleTimeout, and those older than MaxLifetime, attached
// or not. It returns the deletions' errors, joined.
func (m *Manager) Cull(ctx context.Context) error {
	now := m.now()
	type victim struct {
		e   *entry
		why string
	}
	var victims []victim
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	for owner, e := range m.entries {
		if e.sb == nil || e.op != nil {
			continue
		}
		switch {
		case !now.Before(m.expiry(e)):
			victims = append(victims, victim{e, "lifetime"})
		case m.attached[owner] == 0 && now.Sub(e.active) >= m.opts.IdleTimeout:
			victims = append(victims, victim{e, "idle"})
		default:
			continue
		}
		delete(m.entries, owner)
	}
	m.mu.Unlock()

	var errs []error
	for _, v := range victims {
		if err := m.delete(ctx, v.e, v.why); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Shutdown stops the Manager: Acquire fails with ErrClosed from now on,
// creations in flight are cancelled and waited for, and, when the provider
// is ephemeral (its sandboxes die with the process anyway, like the shell
// provider's), every sandbox is deleted. Sandboxes of a durable provider
// are left for the next run to find.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()

	done := make(chan struct{})
	go func() {
		m.ops.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("shut down sandbox manager: %w", ctx.Err())
	}

	eph, ok := m.p.(interface{ Ephemeral() bool })
	if !ok || !eph.Ephemeral() {
		return nil
	}
	m.mu.Lock()
	entries := make([]*entry, 0, len(m.entries))
	for owner, e := range m.entries {
		if e.sb != nil {
			entries = append(entries, e)
		}
		delete(m.entries, owner)
	}
	entries = append(entries, m.pool...)
	m.pool = nil
	m.mu.Unlock()
	var errs []error
	for _, e := range entries {
		if err := m.delete(ctx, e, "shutdown"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats counts the Manager's sandboxes.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s Stats
	for _, e := range m.entries {
		if e.sb != nil {
			s.Live++
		}
		if e.op != nil {
			s.Creating++
		}
	}
	s.Warm = len(m.pool)
	s.Live += len(m.pool)
	s.Creating += m.poolCreating
	return s
}

// newID returns a fresh sandbox ID: the Manager's prefix and 12 random
// hex digits, lower-case, usable as a container or cluster name.
func (m *Manager) newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	id := m.opts.IDPrefix + hex.EncodeToString(b)
	m.mine.Store(id, true)
	return id
}

// operation is a creation or grow that callers wait for together.
type operation struct {
	done chan struct{}
	// Set before done is closed: the error, or the sandbox and its spec.
	err  error
	sb   Sandbox
	spec Spec

	mu      sync.Mutex
	subs    map[int]ProgressFunc
	next    int
	last    Progress
	hasLast bool
}

func newOperation() *operation {
	return &operation{done: make(chan struct{}), subs: make(map[int]ProgressFunc)}
}

// subscribe adds f to the receivers of progress, giving it the latest
// report at once, and returns the function that removes it.
func (o *operation) subscribe(f ProgressFunc) (remove func()) {
	if f == nil {
		return func() {}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	id := o.next
	o.next++
	o.subs[id] = f
	if o.hasLast {
		f(o.last)
	}
	return func() {
		o.mu.Lock()
		delete(o.subs, id)
		o.mu.Unlock()
	}
}

// report sends p to every receiver, in order.
func (o *operation) report(p Progress) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last, o.hasLast = p, true
	for _, f := range o.subs {
		f(p)
	}
}

func (o *operation) succeed(sb Sandbox, spec Spec) {
	o.sb, o.spec = sb, spec
	close(o.done)
}

func (o *operation) finish(err error) {
	o.err = err
	close(o.done)
}
