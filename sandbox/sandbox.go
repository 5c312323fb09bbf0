// Package sandbox defines what a learner's sandbox is (the Provider and
// Sandbox interfaces) and the Manager that owns policy: one sandbox per
// learner, limits, idle culling and reconcile after a restart. Providers live
// in sub-packages (sandbox/shell, sandbox/kind).
package sandbox

import (
	"context"
	"errors"
	"io"
)

// Errors callers branch on.
var (
	ErrNotFound = errors.New("sandbox not found")
	ErrQuota    = errors.New("sandbox limit reached")
	ErrClosed   = errors.New("sandbox manager closed")
)

// Kind is what a sandbox provides, from least to most. A sandbox of a
// greater kind satisfies a lesson that needs a lesser one.
type Kind int

// The sandbox kinds.
const (
	KindShell      Kind = iota + 1 // a terminal with the usual tools
	KindDocker                     // plus the learner's own Docker engine
	KindKubernetes                 // plus the learner's own cluster
)

// Spec says what a learner's sandbox must provide.
type Spec struct {
	Owner   string   // learner ID; label kubelab.io/owner
	Kind    Kind     // what the lesson needs
	Images  []string // images to preload into the engine and cluster
	Workers int      // extra cluster nodes
	// Addons are components installed into the cluster once it is up
	// (AddonKubeflowTraining); they need KindKubernetes.
	Addons []string
	// Resources is what the lesson needs of the cluster in all (its
	// system pods, addons and workloads); zero fields ask nothing. A
	// provider refuses a spec that does not fit what it gives a cluster
	// (Fit).
	Resources Resources
	// Cap is a ceiling on each container of the sandbox (workstation,
	// engine, every node) below the provider's own limits, such as a
	// classroom's per-learner limits; zero fields set none. It applies to
	// what is made from now on and is not compared by Covers.
	Cap Resources
}

// AddonKubeflowTraining is the Kubeflow Training Operator (PyTorchJob),
// in namespace kubeflow.
const AddonKubeflowTraining = "kubeflow-training"

// Resources is an amount of memory and CPU.
type Resources struct {
	Memory int64   // bytes
	CPUs   float64 // cores
}

// Progress is one step of a long operation, shown as a progress bar.
type Progress struct {
	Stage   string // short machine-friendly name: engine, workstation, cluster, ready
	Message string // a sentence for the learner
	Percent int    // 0..100
}

// ProgressFunc receives progress; it must not block.
type ProgressFunc func(Progress)

// Terminal is an interactive PTY in a sandbox.
type Terminal interface {
	io.ReadWriteCloser
	Resize(cols, rows uint16) error
}

// ExecResult is what a non-interactive command produced.
type ExecResult struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// Sandbox is one learner's environment.
type Sandbox interface {
	ID() string
	Owner() string
	Kind() Kind
	// OpenTerminal starts an interactive login shell on a PTY.
	OpenTerminal(ctx context.Context, cols, rows uint16) (Terminal, error)
	// Exec runs script with bash -c and waits for it. A non-zero exit is
	// reported in ExecResult, not as an error.
	Exec(ctx context.Context, script string) (ExecResult, error)
}

// Provider creates, finds and deletes sandboxes of one technology.
type Provider interface {
	Name() string
	// Create builds a sandbox for spec, reporting progress as it goes.
	Create(ctx context.Context, id string, spec Spec, progress ProgressFunc) (Sandbox, error)
	// Grow brings an existing sandbox up to spec (adds a cluster, loads images).
	Grow(ctx context.Context, sb Sandbox, spec Spec, progress ProgressFunc) (Sandbox, error)
	// List returns the sandboxes this provider finds (after a restart too).
	List(ctx context.Context) ([]Sandbox, error)
	// Delete removes a sandbox and everything it owns. Deleting a missing
	// sandbox is not an error.
	Delete(ctx context.Context, id string) error
}
