package sandboxtest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"kubelab/sandbox"
)

// Fake is an in-memory sandbox.Provider for tests of code that uses a
// provider. Set its fields before first use; its methods are safe for
// concurrent use.
type Fake struct {
	// CreateDelay is how long Create (and Grow) take; the context cuts it
	// short.
	CreateDelay time.Duration
	// Block, when not nil, holds Create and Grow until it is closed (or the
	// context is done): a test closes it to let creations finish, without
	// sleeping.
	Block <-chan struct{}
	// CreateErr, when not nil, is returned by Create after its delay.
	CreateErr error
	// GrowErr, when not nil, is returned by Grow after its delay.
	GrowErr error
	// Durable makes Ephemeral report false, as a provider whose sandboxes
	// outlive the server (kind) does.
	Durable bool
	// OnDelete, when not nil, is called with the ID of every Delete.
	OnDelete func(id string)
	// Exec, when not nil, runs a sandbox's Exec; the default returns an
	// empty result with exit code 0.
	Exec func(ctx context.Context, sb *FakeSandbox, script string) (sandbox.ExecResult, error)

	mu      sync.Mutex
	boxes   map[string]*FakeSandbox
	creates int
	grows   int
	deletes []string
}

var _ sandbox.Provider = (*Fake)(nil)

// Name returns "fake".
func (f *Fake) Name() string { return "fake" }

// Ephemeral reports !f.Durable.
func (f *Fake) Ephemeral() bool { return !f.Durable }

// Create reports progress, waits for CreateDelay and Block, and returns a
// FakeSandbox of spec's kind, or CreateErr.
func (f *Fake) Create(ctx context.Context, id string, spec sandbox.Spec, progress sandbox.ProgressFunc) (sandbox.Sandbox, error) {
	f.mu.Lock()
	f.creates++
	f.mu.Unlock()
	if progress != nil {
		progress(sandbox.Progress{Stage: "fake", Message: "Creating a fake sandbox", Percent: 50})
	}
	if err := f.wait(ctx); err != nil {
		return nil, fmt.Errorf("create fake sandbox %s: %w", id, err)
	}
	if f.CreateErr != nil {
		return nil, fmt.Errorf("create fake sandbox %s: %w", id, f.CreateErr)
	}
	sb := &FakeSandbox{id: id, owner: spec.Owner, kind: max(spec.Kind, sandbox.KindShell), fake: f}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.boxes == nil {
		f.boxes = make(map[string]*FakeSandbox)
	}
	if _, ok := f.boxes[id]; ok {
		return nil, fmt.Errorf("create fake sandbox %s: id in use", id)
	}
	f.boxes[id] = sb
	return sb, nil
}

// Grow waits like Create, then raises the sandbox's kind to spec's, or
// returns GrowErr.
func (f *Fake) Grow(ctx context.Context, sb sandbox.Sandbox, spec sandbox.Spec, progress sandbox.ProgressFunc) (sandbox.Sandbox, error) {
	f.mu.Lock()
	f.grows++
	f.mu.Unlock()
	if progress != nil {
		progress(sandbox.Progress{Stage: "fake", Message: "Growing a fake sandbox", Percent: 50})
	}
	if err := f.wait(ctx); err != nil {
		return nil, fmt.Errorf("grow fake sandbox %s: %w", sb.ID(), err)
	}
	if f.GrowErr != nil {
		return nil, fmt.Errorf("grow fake sandbox %s: %w", sb.ID(), f.GrowErr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fs, ok := f.boxes[sb.ID()]
	if !ok {
		return nil, fmt.Errorf("grow fake sandbox %s: %w", sb.ID(), sandbox.ErrNotFound)
	}
	fs.mu.Lock()
	fs.kind = max(fs.kind, spec.Kind)
	fs.mu.Unlock()
	return fs, nil
}

func (f *Fake) wait(ctx context.Context) error {
	if f.CreateDelay > 0 {
		timer := time.NewTimer(f.CreateDelay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.Block != nil {
		select {
		case <-f.Block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// List returns the live sandboxes, ordered by ID.
func (f *Fake) List(ctx context.Context) ([]sandbox.Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.boxes))
	for id := range f.boxes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]sandbox.Sandbox, 0, len(ids))
	for _, id := range ids {
		out = append(out, f.boxes[id])
	}
	return out, nil
}

// Delete forgets the sandbox and records the call.
func (f *Fake) Delete(ctx context.Context, id string) error {
	f.mu.Lock()
	if sb, ok := f.boxes[id]; ok {
		sb.mu.Lock()
		sb.deleted = true
		sb.mu.Unlock()
	}
	delete(f.boxes, id)
	f.deletes = append(f.deletes, id)
	f.mu.Unlock()
	if f.OnDelete != nil {
		f.OnDelete(id)
	}
	return nil
}

// Creates returns how many times Create was called.
func (f *Fake) Creates() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates
}

// Grows returns how many times Grow was called.
func (f *Fake) Grows() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.grows
}

// Deletes returns the IDs passed to Delete, in order.
func (f *Fake) Deletes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.deletes)
}

// FakeSandbox is a sandbox of Fake. Its terminals echo what is typed.
type FakeSandbox struct {
	id, owner string
	fake      *Fake

	mu      sync.Mutex
	kind    sandbox.Kind
	deleted bool
}

var _ sandbox.Sandbox = (*FakeSandbox)(nil)

// ID returns the sandbox's ID.
func (s *FakeSandbox) ID() string { return s.id }

// Owner returns the owner it was created for.
func (s *FakeSandbox) Owner() string { return s.owner }

// Kind returns the kind it was created or grown to.
func (s *FakeSandbox) Kind() sandbox.Kind {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kind
}

// Deleted reports whether the provider deleted the sandbox.
func (s *FakeSandbox) Deleted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleted
}

// OpenTerminal returns an EchoTerminal.
func (s *FakeSandbox) OpenTerminal(ctx context.Context, cols, rows uint16) (sandbox.Terminal, error) {
	if s.Deleted() {
		return nil, fmt.Errorf("open terminal in fake sandbox %s: %w", s.id, sandbox.ErrNotFound)
	}
	return NewEchoTerminal(cols, rows), nil
}

// Exec runs Fake.Exec, or returns an empty result with exit code 0.
func (s *FakeSandbox) Exec(ctx context.Context, script string) (sandbox.ExecResult, error) {
	if s.Deleted() {
		return sandbox.ExecResult{}, fmt.Errorf("exec in fake sandbox %s: %w", s.id, sandbox.ErrNotFound)
	}
	if s.fake.Exec != nil {
		return s.fake.Exec(ctx, s, script)
	}
	return sandbox.ExecResult{}, nil
}

// EchoTerminal is a sandbox.Terminal that reads back what was written to it,
// like a PTY whose shell only echoes. A Write waits until the bytes are read.
type EchoTerminal struct {
	r *io.PipeReader
	w *io.PipeWriter

	mu         sync.Mutex
	cols, rows uint16
}

// NewEchoTerminal returns an EchoTerminal of cols x rows.
func NewEchoTerminal(cols, rows uint16) *EchoTerminal {
	r, w := io.Pipe()
	return &EchoTerminal{r: r, w: w, cols: cols, rows: rows}
}

// Read returns what was written; io.EOF after Close.
func (e *EchoTerminal) Read(p []byte) (int, error) { return e.r.Read(p) }

// Write echoes p.
func (e *EchoTerminal) Write(p []byte) (int, error) { return e.w.Write(p) }

// Close ends reads with io.EOF and writes with io.ErrClosedPipe.
func (e *EchoTerminal) Close() error { return e.w.Close() }

// Resize records the size.
func (e *EchoTerminal) Resize(cols, rows uint16) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cols, e.rows = cols, rows
	return nil
}

// Size returns the last size set.
func (e *EchoTerminal) Size() (cols, rows uint16) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cols, e.rows
}
