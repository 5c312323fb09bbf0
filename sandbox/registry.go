package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Record is what the Manager persists of a sandbox, so that a restarted
// server can tell the sandboxes it owns from orphans.
type Record struct {
	ID        string
	Owner     string // "" for a sandbox in the warm pool
	State     string // RecordCreating or RecordReady
	Spec      Spec   // what the sandbox was built or grown to
	CreatedAt time.Time
	LastUsed  time.Time
	ExpiresAt time.Time // zero: CreatedAt plus the Manager's MaxLifetime
}

// Record states.
const (
	RecordCreating = "creating"
	RecordReady    = "ready"
	// RecordDeleting is written before a deletion starts: a server killed
	// in the middle of one finds it so after the restart and finishes it,
	// instead of adopting half a sandbox.
	RecordDeleting = "deleting"
)

// Registry persists Records (the server's store implements it). The Manager
// writes a record before a creation starts, updates it when the sandbox is
// ready or handed out, and removes it after the sandbox is deleted.
type Registry interface {
	SaveSandbox(ctx context.Context, r Record) error
	DeleteSandbox(ctx context.Context, id string) error
	Sandboxes(ctx context.Context) ([]Record, error)
}

// EncodeSpec and DecodeSpec turn a Spec into the JSON a registry stores.
func EncodeSpec(s Spec) (string, error) {
	b, err := json.Marshal(specJSON{Kind: s.Kind.String(), Images: s.Images, Workers: s.Workers, Addons: s.Addons, Memory: s.Resources.Memory, CPUs: s.Resources.CPUs})
	if err != nil {
		return "", fmt.Errorf("encode spec: %w", err)
	}
	return string(b), nil
}

// DecodeSpec is the inverse of EncodeSpec; owner is set from the record.
func DecodeSpec(owner, s string) (Spec, error) {
	var j specJSON
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return Spec{}, fmt.Errorf("decode spec %q: %w", s, err)
	}
	k, err := ParseKind(j.Kind)
	if err != nil {
		return Spec{}, err
	}
	return Spec{Owner: owner, Kind: k, Images: j.Images, Workers: j.Workers, Addons: j.Addons, Resources: Resources{Memory: j.Memory, CPUs: j.CPUs}}, nil
}

type specJSON struct {
	Kind    string   `json:"kind"`
	Images  []string `json:"images,omitempty"`
	Workers int      `json:"workers,omitempty"`
	Addons  []string `json:"addons,omitempty"`
	Memory  int64    `json:"memory,omitempty"`
	CPUs    float64  `json:"cpus,omitempty"`
}

// KindFor is the sandbox a lesson's front matter asks for: a lesson
// without one ("none") that still opens a terminal gets a shell.
func KindFor(name string) Kind {
	if k, err := ParseKind(name); err == nil {
		return k
	}
	return KindShell
}

// ParseKind is the inverse of Kind.String for the three kinds.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "shell":
		return KindShell, nil
	case "docker":
		return KindDocker, nil
	case "kubernetes":
		return KindKubernetes, nil
	}
	return 0, fmt.Errorf("unknown sandbox kind %q", s)
}

// saveRecord writes r if the Manager has a registry; a failure is logged,
// not fatal: the sandbox works, only reconcile after a restart would not
// know it.
func (m *Manager) saveRecord(r Record) {
	if m.opts.Registry == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), 10*time.Second)
	defer cancel()
	if err := m.opts.Registry.SaveSandbox(ctx, r); err != nil {
		m.log.Error("save sandbox record", "sandbox_id", r.ID, "err", err)
	}
}

func (m *Manager) deleteRecord(id string) {
	if m.opts.Registry == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), 10*time.Second)
	defer cancel()
	if err := m.opts.Registry.DeleteSandbox(ctx, id); err != nil {
		m.log.Error("delete sandbox record", "sandbox_id", id, "err", err)
	}
}

// Reconcile matches what the provider finds against the registry, once,
// at start-up, for the sandboxes whose ID has this Manager's IDPrefix: a sandbox with a ready record is adopted (its owner gets it
// back, or it rejoins the warm pool); any other sandbox is an orphan of an
// earlier run (a creation or a deletion cut short, a record lost) and is
// deleted; a
// record without a sandbox is dropped. It returns how many were adopted
// and deleted.
func (m *Manager) Reconcile(ctx context.Context) (adopted, deleted int, err error) {
	live, err := m.p.List(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("reconcile: list sandboxes: %w", err)
	}
	records := map[string]Record{}
	if m.opts.Registry != nil {
		recs, err := m.opts.Registry.Sandboxes(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("reconcile: read records: %w", err)
		}
		for _, r := range recs {
			records[r.ID] = r
		}
	}
	var errs []error
	seen := map[string]bool{}
	for _, sb := range live {
		if !strings.HasPrefix(sb.ID(), m.opts.IDPrefix) {
			continue // another server's (or a test run's): not ours to judge
		}
		seen[sb.ID()] = true
		r, ok := records[sb.ID()]
		if ok && r.State == RecordReady && m.adopt(sb, r) {
			m.mine.Store(sb.ID(), true)
			adopted++
			m.log.Info("adopted sandbox", "sandbox_id", sb.ID(), "user_id", r.Owner)
			continue
		}
		m.log.Info("deleting orphaned sandbox", "sandbox_id", sb.ID())
		if err := m.p.Delete(ctx, sb.ID()); err != nil {
			errs = append(errs, fmt.Errorf("delete orphan %s: %w", sb.ID(), err))
			continue
		}
		m.deleteRecord(sb.ID())
		deleted++
	}
	for id := range records {
		if !seen[id] {
			m.deleteRecord(id)
		}
	}
	if len(errs) > 0 {
		return adopted, deleted, fmt.Errorf("reconcile: %w", errors.Join(errs...))
	}
	return adopted, deleted, nil
}

// adopt takes a sandbox found after a restart back: into its owner's entry,
// or into the warm pool. It refuses (false) when the owner already has one.
func (m *Manager) adopt(sb Sandbox, r Record) bool {
	spec := r.Spec
	spec.Owner = r.Owner
	if spec.Kind == 0 {
		spec.Kind = sb.Kind()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.Owner == "" {
		m.pool = append(m.pool, &entry{sb: sb, spec: spec, created: r.CreatedAt, active: m.now()})
		return true
	}
	if m.entries[r.Owner] != nil {
		return false
	}
	m.entries[r.Owner] = &entry{owner: r.Owner, sb: sb, spec: spec, created: r.CreatedAt, active: m.now(), expires: r.ExpiresAt}
	return true
}

// saveOwner records that owner's sandbox (just handed out of the pool)
// belongs to them now.
func (m *Manager) saveOwner(owner string) {
	m.mu.Lock()
	e := m.entries[owner]
	if e == nil || e.sb == nil {
		m.mu.Unlock()
		return
	}
	r := Record{ID: e.sb.ID(), Owner: owner, State: RecordReady, Spec: e.spec, CreatedAt: e.created, LastUsed: e.active, ExpiresAt: e.expires}
	m.mu.Unlock()
	m.saveRecord(r)
}
