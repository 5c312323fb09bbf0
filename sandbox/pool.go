package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The warm pool: ready sandboxes with no owner yet, so the next learner
// gets one at once. The pool holds ManagerOptions.WarmPool sandboxes of
// ManagerOptions.WarmSpec and is refilled in the background by Run.

// takeWarm hands a pooled sandbox to owner, if there is one. Called with
// m.mu held. The sandbox may cover less than the owner needs (images); the
// caller grows it then, which is still much faster than a cold creation.
func (m *Manager) takeWarm(owner string) *entry {
	if len(m.pool) == 0 {
		return nil
	}
	e := m.pool[0]
	m.pool = m.pool[1:]
	now := m.now()
	// The owner's lifetime starts now, not when the pool made it.
	e.owner, e.active, e.created = owner, now, now
	e.spec.Owner = owner
	m.entries[owner] = e
	m.signalRefill()
	return e
}

// signalRefill wakes Run to top the pool up. Called with or without m.mu.
func (m *Manager) signalRefill() {
	select {
	case m.refill <- struct{}{}:
	default:
	}
}

// fillPool starts creations until the pool, counting those in flight, holds
// WarmPool sandboxes, within MaxSandboxes.
func (m *Manager) fillPool() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	for len(m.pool)+m.poolCreating < m.opts.WarmPool {
		if limit := m.opts.MaxSandboxes; limit > 0 && len(m.entries)+len(m.pool)+m.poolCreating >= limit {
			return
		}
		m.poolCreating++
		m.ops.Add(1)
		go m.createWarm()
	}
}

// createWarm makes one pooled sandbox. A failure is logged and retried on
// the next refill, after a pause so a broken image does not spin.
func (m *Manager) createWarm() {
	defer m.ops.Done()
	spec := m.opts.WarmSpec
	spec.Owner = ""
	id := m.newID()
	log := m.log.With("sandbox_id", id, "pool", true)
	op := newOperation()
	err := m.acquireSlot(op)
	var sb Sandbox
	if err == nil {
		now := m.now()
		m.saveRecord(Record{ID: id, State: RecordCreating, Spec: spec, CreatedAt: now, LastUsed: now})
		log.Info("creating warm sandbox", "kind", spec.Kind.String())
		start := time.Now()
		sb, err = m.p.Create(m.ctx, id, spec, nil)
		<-m.slots
		if err == nil && sb == nil {
			err = errors.New("provider returned no sandbox")
		}
		if err != nil {
			m.cleanup(id, log)
		} else {
			log.Info("warm sandbox ready", "seconds", time.Since(start).Seconds())
		}
	}
	m.mu.Lock()
	m.poolCreating--
	if err != nil {
		m.mu.Unlock()
		if !errors.Is(err, context.Canceled) {
			log.Error("create warm sandbox", "err", err)
			m.poolFailures.Add(1)
		}
		return
	}
	now := m.now()
	m.pool = append(m.pool, &entry{sb: sb, spec: spec, created: now, active: now})
	m.mu.Unlock()
	m.saveRecord(Record{ID: id, State: RecordReady, Spec: spec, CreatedAt: now, LastUsed: now})
}

// cleanup deletes what a failed creation made, and its record.
func (m *Manager) cleanup(id string, log interface{ Error(string, ...any) }) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), cleanupTimeout)
	defer cancel()
	if err := m.p.Delete(ctx, id); err != nil {
		log.Error("delete after failed creation", "sandbox_id", id, "err", err)
		return fmt.Errorf("clean up: %w", err)
	}
	m.deleteRecord(id)
	return nil
}
