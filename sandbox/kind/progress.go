package kind

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	kindlog "sigs.k8s.io/kind/pkg/log"

	"kubelab/sandbox"
)

// reporter passes progress on, never backwards: a stage that reports less
// than what was already shown keeps its message at the bar's percent.
type reporter struct {
	mu   sync.Mutex
	f    sandbox.ProgressFunc
	last int
}

func newReporter(f sandbox.ProgressFunc) *reporter { return &reporter{f: f} }

func (r *reporter) report(stage, msg string, pct int) {
	if r == nil || r.f == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Stages run side by side (the cluster beside the engine and the
	// workstation): a message of a stage behind the bar is still shown,
	// at the bar's percent, which never goes back.
	pct = max(pct, r.last)
	r.last = pct
	r.f(sandbox.Progress{Stage: stage, Message: msg, Percent: pct})
}

// kindStep is one line kind logs while it creates a cluster and the
// progress it marks.
type kindStep struct {
	prefix  string // the status, as kind words it, without its icon
	state   byte   // 's' started, 'd' done
	stage   string
	message string
	percent int
}

// kindSteps returns the lines of kind's `create cluster` in the order kind
// logs them (sigs.k8s.io/kind v0.33: pkg/cluster/internal/create and its
// actions).
func kindSteps() []kindStep {
	return []kindStep{
		{"Creating cluster", 's', "cluster", "Creating your Kubernetes cluster", 47},
		{"Ensuring node image", 's', "cluster", "Checking the node image", 48},
		{"Preparing nodes", 's', "cluster", "Preparing the cluster's nodes", 50},
		{"Preparing nodes", 'd', "cluster", "The cluster's nodes are running", 55},
		{"Writing configuration", 's', "cluster", "Writing the cluster's configuration", 60},
		{"Starting control-plane", 's', "cluster", "Starting the control plane", 65},
		{"Starting control-plane", 'd', "cluster", "The control plane is up", 80},
		{"Installing CNI", 's', "cluster", "Installing pod networking", 83},
		{"Installing StorageClass", 's', "cluster", "Installing storage", 85},
		{"Joining more control-plane nodes", 's', "cluster", "Joining more control-plane nodes", 86},
		{"Joining worker nodes", 's', "cluster", "Joining the worker nodes", 87},
		{"Waiting ≤", 's', "cluster", "Waiting for the cluster to be ready", 88},
		{"Ready after", 's', "ready", "The cluster is ready", 90},
	}
}

// kindTimedOut is how kind says that the control plane did not become
// Ready in time; kind's Create then returns no error.
const kindTimedOut = "Timed out waiting for Ready"

// parseKindLine tells whether line is one of kind's status lines and, if
// so, whether it starts ('s'), ends ('d') or fails ('f') a step, and the
// step's words. kind writes " • Preparing nodes 📦  ...", " ✓ Preparing
// nodes 📦" and " ✗ ..." (without colours, as we are not its terminal
// spinner), and "Creating cluster \"name\" ...".
func parseKindLine(line string) (state byte, text string) {
	line = strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(line, "• "):
		return 's', strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "• "), "..."))
	case strings.HasPrefix(line, "✓ "):
		return 'd', strings.TrimPrefix(line, "✓ ")
	case strings.HasPrefix(line, "✗ "):
		return 'f', strings.TrimPrefix(line, "✗ ")
	case strings.HasPrefix(line, "Creating cluster"):
		return 's', line
	}
	return 0, ""
}

// kindProgress maps one line kind logs (at verbosity 0) to the progress it
// marks.
func kindProgress(line string) (sandbox.Progress, bool) {
	state, text := parseKindLine(line)
	if state == 0 {
		return sandbox.Progress{}, false
	}
	for _, s := range kindSteps() {
		if s.state == state && strings.HasPrefix(text, s.prefix) {
			return sandbox.Progress{Stage: s.stage, Message: s.message, Percent: s.percent}, true
		}
	}
	return sandbox.Progress{}, false
}

// kindLogger is the log.Logger given to kind: it sends kind's lines to
// slog (verbosity 0 at Info, the rest at Debug), turns its status lines
// into progress, and notes when kind gave up waiting for Ready.
type kindLogger struct {
	logger   *slog.Logger
	progress *reporter
	// networkRead, when set, is called once kind says it has read the
	// variable that names its nodes' network (kindnet.go).
	networkRead func()
	// waitingReady, when set, is called once kind starts waiting for the
	// control plane to be Ready: the API server answers, the nodes have
	// joined (createCluster applies the learner policies then, beside the
	// wait). With singleNode set it is called earlier, as soon as the
	// control plane is up: no node joins after that.
	waitingReady func()
	singleNode   bool

	mu          sync.Mutex
	timedOut    bool
	calledReady bool
}

var _ kindlog.Logger = (*kindLogger)(nil)

func (l *kindLogger) Warn(message string) {
	if l.networkRead != nil && isKindNetworkRead(message) {
		l.networkRead()
		l.logger.Debug(strings.TrimSpace(message)) // expected: not a warning to us
		return
	}
	if l.networkRead != nil && strings.Contains(message, kindNetworkDragons) {
		l.logger.Debug(strings.TrimSpace(message)) // its second line
		return
	}
	l.logger.Warn(strings.TrimSpace(message))
}
func (l *kindLogger) Warnf(format string, args ...any) {
	l.Warn(fmt.Sprintf(format, args...))
}
func (l *kindLogger) Error(message string) { l.logger.Error(strings.TrimSpace(message)) }
func (l *kindLogger) Errorf(format string, args ...any) {
	l.Error(fmt.Sprintf(format, args...))
}

// V returns the logger of verbosity level.
func (l *kindLogger) V(level kindlog.Level) kindlog.InfoLogger {
	return kindInfo{l: l, level: level}
}

// line handles one informational line of kind.
func (l *kindLogger) line(level kindlog.Level, msg string) {
	msg = strings.TrimSpace(msg)
	if level > 0 {
		l.logger.Debug(msg)
		return
	}
	l.logger.Info(msg)
	if strings.Contains(msg, kindTimedOut) {
		l.mu.Lock()
		l.timedOut = true
		l.mu.Unlock()
	}
	if pr, ok := kindProgress(msg); ok {
		l.progress.report(pr.Stage, pr.Message, pr.Percent)
	}
	if l.readyForPolicies(msg) {
		l.ready()
	}
}

// ready calls waitingReady, if set, the first time it is called.
func (l *kindLogger) ready() {
	if l.waitingReady == nil {
		return
	}
	l.mu.Lock()
	first := !l.calledReady
	l.calledReady = true
	l.mu.Unlock()
	if first {
		l.waitingReady()
	}
}

// readyForPolicies reports whether kind's line msg says that the API
// server answers and every node has joined.
func (l *kindLogger) readyForPolicies(msg string) bool {
	state, text := parseKindLine(msg)
	if state == 's' && strings.HasPrefix(text, "Waiting ≤") {
		return true
	}
	return l.singleNode && state == 'd' && strings.HasPrefix(text, "Starting control-plane")
}

// gaveUp reports whether kind timed out waiting for the control plane.
func (l *kindLogger) gaveUp() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.timedOut
}

type kindInfo struct {
	l     *kindLogger
	level kindlog.Level
}

func (i kindInfo) Info(message string) { i.l.line(i.level, message) }
func (i kindInfo) Infof(format string, args ...any) {
	i.l.line(i.level, fmt.Sprintf(format, args...))
}

// Enabled is true at verbosity 0 (the status lines progress needs) and
// above it when slog would keep debug lines.
func (i kindInfo) Enabled() bool {
	return i.level == 0 || i.l.logger.Enabled(context.Background(), slog.LevelDebug)
}
