// Package shell is a sandbox provider whose sandboxes are host shells: a real
// PTY running a login shell (bash -l) in a private temporary HOME with a
// clean environment: PATH (the server's), HOME, TERM, LANG, USER, LOGNAME,
// SHELL, PS1, and KUBELAB_SANDBOX=<id>, which marks every process of the
// sandbox so that Delete can find and kill them all. It isolates nothing (the shell runs as the server's user, on
// the server's filesystem and network), so it is for authoring text lessons
// on a trusted machine and for testing the terminal path, never for
// untrusted learners.
//
// Its sandboxes live only as long as the process: List reports the ones
// this Provider made, and Ephemeral reports true so that the Manager deletes
// them on shutdown.
package shell

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/ptyexec"
)

// Provider creates host-shell sandboxes under one base directory.
type Provider struct {
	baseDir string
	logger  *slog.Logger
	shell   string        // absolute path of the login shell
	isBash  bool          // shell is bash: it reads .bash_profile and knows \u in PS1
	path    string        // PATH given to every sandbox
	user    string        // USER and LOGNAME given to every sandbox
	waitFor time.Duration // how long Close waits between SIGHUP, SIGTERM and SIGKILL

	exits ptyexec.Watcher // tells the terminals when their shells exit

	mu    sync.Mutex
	boxes map[string]*Sandbox
}

// closeTimeout is how long a closing terminal's shell gets after each signal
// (SIGHUP, then SIGTERM) before the next, stronger one (gotty's close
// timeout).
const closeTimeout = 5 * time.Second

// outputCap is the most of each of stdout and stderr that Exec keeps.
const outputCap = 1 << 20

// New returns a Provider that makes each sandbox's HOME under baseDir
// (created if missing) and logs to logger (nil discards). The shell is bash
// when it is on PATH, otherwise $SHELL, otherwise /bin/sh.
func New(baseDir string, logger *slog.Logger) *Provider {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sh := findShell()
	name := "learner"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return &Provider{
		baseDir: baseDir,
		logger:  logger.With("provider", "shell"),
		shell:   sh,
		isBash:  filepath.Base(sh) == "bash",
		path:    cmp.Or(os.Getenv("PATH"), "/usr/local/bin:/usr/bin:/bin"),
		user:    name,
		waitFor: closeTimeout,
		boxes:   make(map[string]*Sandbox),
	}
}

// findShell returns bash if it is installed, else $SHELL, else /bin/sh.
func findShell() string {
	if p, err := exec.LookPath("bash"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	if sh := os.Getenv("SHELL"); sh != "" {
		if _, err := os.Stat(sh); err == nil {
			return sh
		}
	}
	return "/bin/sh"
}

var _ sandbox.Provider = (*Provider)(nil)

// Name returns "shell".
func (p *Provider) Name() string { return "shell" }

// Ephemeral reports true: shell sandboxes do not survive the process, so
// the Manager deletes them when it shuts down.
func (p *Provider) Ephemeral() bool { return true }

// Create makes a private HOME for a new sandbox. A spec that needs a Docker
// engine or a cluster is refused with an error wrapping
// sandbox.ErrUnsupported.
func (p *Provider) Create(ctx context.Context, id string, spec sandbox.Spec, progress sandbox.ProgressFunc) (sandbox.Sandbox, error) {
	if err := supported(spec); err != nil {
		return nil, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	if id == "" {
		return nil, errors.New("create sandbox: empty id")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	report(progress, "workstation", "Preparing your shell", 10)

	p.mu.Lock()
	_, exists := p.boxes[id]
	p.mu.Unlock()
	if exists {
		return nil, fmt.Errorf("create sandbox %s: a sandbox with this id exists", id)
	}
	if err := os.MkdirAll(p.baseDir, 0o755); err != nil {
		return nil, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	home, err := os.MkdirTemp(p.baseDir, "home-*")
	if err != nil {
		return nil, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	if err := p.writeDotfiles(home); err != nil {
		_ = os.RemoveAll(home)
		return nil, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	sb := &Sandbox{
		id:     id,
		owner:  spec.Owner,
		home:   home,
		shell:  p.shell,
		env:    p.environ(id, home),
		logger: p.logger.With("sandbox_id", id),
		wait:   p.waitFor,
		exits:  &p.exits,
		terms:  make(map[*terminal]struct{}),
		execs:  make(map[int]struct{}),
	}
	p.mu.Lock()
	if _, exists := p.boxes[id]; exists {
		p.mu.Unlock()
		_ = os.RemoveAll(home)
		return nil, fmt.Errorf("create sandbox %s: a sandbox with this id exists", id)
	}
	p.boxes[id] = sb
	p.mu.Unlock()
	sb.logger.Info("sandbox created", "owner", spec.Owner, "home", home)
	return sb, nil
}

// Grow returns sb unchanged when spec needs only a shell; anything more is
// refused with an error wrapping sandbox.ErrUnsupported.
func (p *Provider) Grow(ctx context.Context, sb sandbox.Sandbox, spec sandbox.Spec, progress sandbox.ProgressFunc) (sandbox.Sandbox, error) {
	if err := supported(spec); err != nil {
		return nil, fmt.Errorf("grow sandbox %s: %w", sb.ID(), err)
	}
	if _, ok := p.lookup(sb.ID()); !ok {
		return nil, fmt.Errorf("grow sandbox %s: %w", sb.ID(), sandbox.ErrNotFound)
	}
	return sb, nil
}

// List returns the live sandboxes of this Provider, ordered by ID.
func (p *Provider) List(ctx context.Context) ([]sandbox.Sandbox, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.boxes))
	for id := range p.boxes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]sandbox.Sandbox, 0, len(ids))
	for _, id := range ids {
		out = append(out, p.boxes[id])
	}
	return out, nil
}

// Delete closes the sandbox's terminals, kills every process it started
// (including ones that left the terminal's session but kept its
// environment) and removes its HOME. Deleting a missing sandbox is not an
// error.
func (p *Provider) Delete(ctx context.Context, id string) error {
	p.mu.Lock()
	sb, ok := p.boxes[id]
	delete(p.boxes, id)
	p.mu.Unlock()
	if !ok {
		return nil
	}
	sb.shutdown(ctx)
	if err := os.RemoveAll(sb.home); err != nil {
		return fmt.Errorf("delete sandbox %s: remove home: %w", id, err)
	}
	sb.logger.Info("sandbox deleted")
	return nil
}

func (p *Provider) lookup(id string) (*Sandbox, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sb, ok := p.boxes[id]
	return sb, ok
}

// supported refuses specs that need more than a shell.
func supported(spec sandbox.Spec) error {
	if spec.Kind > sandbox.KindShell {
		return fmt.Errorf("the shell provider has no Docker engine or Kubernetes cluster, and this needs %s: %w", spec.Kind, sandbox.ErrUnsupported)
	}
	return nil
}

func report(progress sandbox.ProgressFunc, stage, msg string, pct int) {
	if progress != nil {
		progress(sandbox.Progress{Stage: stage, Message: msg, Percent: pct})
	}
}

// markerVar names the environment variable that tags every process of a
// sandbox, so that Delete finds processes that left the terminal's session.
const markerVar = "KUBELAB_SANDBOX"

// environ is the whole environment of a sandbox's processes: nothing of the
// server's own environment but PATH.
func (p *Provider) environ(id, home string) []string {
	return []string{
		"PATH=" + p.path,
		"HOME=" + home,
		"TERM=xterm-256color",
		"LANG=C.UTF-8",
		"USER=" + p.user,
		"LOGNAME=" + p.user,
		"SHELL=" + p.shell,
		"PS1=" + p.prompt(),
		markerVar + "=" + id,
	}
}

// prompt is PS1: bash expands \u and \w, other shells get a plain one.
func (p *Provider) prompt() string {
	if p.isBash {
		return `\u@kubelab:\w\$ `
	}
	return p.user + "@kubelab$ "
}

// writeDotfiles writes the only startup files the login shell reads from
// HOME. The system's /etc/profile still runs (it is what a login shell is)
// and resets PATH, so the profile restores the server's PATH and the prompt.
func (p *Provider) writeDotfiles(home string) error {
	path := shellQuote(p.path)
	files := map[string]string{
		".bash_profile": "# Written by kubelab: the login profile of this sandbox. It sources\n" +
			"# nothing but the .bashrc beside it.\n" +
			"export PATH=" + path + "\n" +
			"[ -r \"$HOME/.bashrc\" ] && . \"$HOME/.bashrc\"\n",
		".bashrc": "# Written by kubelab: the interactive settings of this sandbox.\n" +
			"PS1=" + shellQuote(`\u@kubelab:\w\$ `) + "\n",
		".profile": "# Written by kubelab for shells other than bash.\n" +
			"export PATH=" + path + "\n" +
			"PS1=" + shellQuote(p.user+"@kubelab$ ") + "\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(home, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
