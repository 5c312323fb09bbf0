package kind

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kubelab/sandbox"
)

// outputCap is the most of each of stdout and stderr that Exec keeps.
const outputCap = 1 << 20

// markerVar tags the processes that a terminal or an Exec starts in the
// workstation, so that they can be found and signalled there: the docker
// CLI does not pass signals on to what `docker exec` runs, and killing it
// leaves that running.
const markerVar = "KUBELAB_SESSION"

// Sandbox is one learner's sandbox: a workstation container and, by its
// kind, the learner's Docker engine and kind cluster. The value holds no
// state of its own beyond what identifies it: everything is read from
// Docker, so a Sandbox that List rebuilt after a restart works as well as
// the one Create returned.
//
// The sandbox.Sandbox values the Provider returns also implement, by
// kind, DockerHost (docker and kubernetes) and RESTConfig (kubernetes),
// the optional methods of sandbox/checktarget; a sandbox without the
// engine or the cluster does not have them, so checkers see it as
// unavailable.
type Sandbox struct {
	p     *Provider
	id    string
	owner string
	kind  sandbox.Kind
}

// engineSandbox is a sandbox with the learner's Docker engine.
type engineSandbox struct{ *Sandbox }

// clusterSandbox is a sandbox with the learner's Docker engine and cluster.
type clusterSandbox struct{ *Sandbox }

var (
	_ sandbox.Sandbox = (*Sandbox)(nil)
	_ sandbox.Sandbox = engineSandbox{}
	_ sandbox.Sandbox = clusterSandbox{}
)

// DockerHost returns the learner's engine as the host reaches it,
// tcp://<engine IP on the sandbox network>:2375.
func (s engineSandbox) DockerHost(ctx context.Context) (string, error) {
	return s.p.engineHost(ctx, s.id)
}

// DockerHost returns the learner's engine as the host reaches it,
// tcp://<engine IP on the sandbox network>:2375.
func (s clusterSandbox) DockerHost(ctx context.Context) (string, error) {
	return s.p.engineHost(ctx, s.id)
}

// RESTConfig returns a client configuration for the learner's cluster
// from kind's external kubeconfig (https://127.0.0.1:<port kind
// published>, cluster-admin), for the server's checkers.
func (s clusterSandbox) RESTConfig(ctx context.Context) (*rest.Config, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kubeconfig of sandbox %s: %w", s.id, err)
	}
	raw, err := s.p.endpoints.get(ctx, s.id+"/kubeconfig", func(context.Context) (string, error) {
		raw, err := kindProvider(s.p.quietKind(s.id)).KubeConfig(s.id, false)
		if err != nil {
			return "", kindError(err)
		}
		return raw, nil
	})
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of sandbox %s: %w", s.id, err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of sandbox %s: %w", s.id, err)
	}
	return cfg, nil
}

// wrap returns sb as the sandbox.Sandbox of its kind.
func wrap(sb *Sandbox) sandbox.Sandbox {
	switch {
	case sb.kind >= sandbox.KindKubernetes:
		return clusterSandbox{sb}
	case sb.kind >= sandbox.KindDocker:
		return engineSandbox{sb}
	default:
		return sb
	}
}

// ID returns the sandbox's ID, which names its Docker objects.
func (s *Sandbox) ID() string { return s.id }

// Owner returns the learner the sandbox was made for.
func (s *Sandbox) Owner() string { return s.owner }

// Kind returns what the sandbox provides.
func (s *Sandbox) Kind() sandbox.Kind { return s.kind }

// OpenTerminal starts a login shell (bash -l) as the learner in the
// workstation, on a new PTY of cols x rows: `docker exec -it -u learner -w
// /home/learner -e TERM=xterm-256color ID-ws bash -l`.
func (s *Sandbox) OpenTerminal(ctx context.Context, cols, rows uint16) (sandbox.Terminal, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open terminal in sandbox %s: %w", s.id, err)
	}
	if err := s.p.running(ctx, s.id); err != nil {
		return nil, fmt.Errorf("open terminal in sandbox %s: %w", s.id, err)
	}
	marker := markerVar + "=" + newToken()
	cmd := exec.Command(s.p.opts.Docker, "exec", "--interactive", "--tty",
		"--user", learnerUser, "--workdir", learnerHome,
		"--env", "TERM=xterm-256color", "--env", marker,
		workstationName(s.id), "bash", "-l")
	if cols == 0 || rows == 0 {
		cols, rows = 80, 24
	}
	t, err := startTerminal(cmd, cols, rows, s, marker)
	if err != nil {
		return nil, fmt.Errorf("open terminal in sandbox %s: %w", s.id, err)
	}
	// The docker CLI hands the PTY's size to the shell asynchronously; on a
	// busy host a first command could still see 0x0. Set the size in the
	// workstation as soon as the shell is there, before handing it over.
	deadline := time.Now().Add(terminalSizeWait)
	for {
		err := t.Resize(cols, rows)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.p.logger.Warn("could not set the new terminal's size", "sandbox_id", s.id, "err", err)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return t, nil
}

// terminalSizeWait bounds the wait for a new shell to appear in the
// workstation so its terminal size can be set.
const terminalSizeWait = 15 * time.Second

// Exec runs script with bash -c as the learner in the workstation, in
// /home/learner, with no standard input, and waits for it. Each of stdout
// and stderr keeps at most its first MiB. Cancelling ctx kills the docker
// CLI and what it started in the workstation, and returns an error
// wrapping ctx.Err(). A sandbox whose workstation is gone or stopped is an
// error (wrapping sandbox.ErrNotFound when it is gone), not an exit code.
func (s *Sandbox) Exec(ctx context.Context, script string) (sandbox.ExecResult, error) {
	stdout, stderr := sandbox.CappedBuffer{Max: outputCap}, sandbox.CappedBuffer{Max: outputCap}
	marker := markerVar + "=" + newToken()
	cmd := exec.CommandContext(ctx, s.p.opts.Docker, "exec",
		"--user", learnerUser, "--workdir", learnerHome, "--env", marker,
		workstationName(s.id), "bash", "-c", script)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Cancel = func() error {
		err := cmd.Process.Kill()
		kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, kerr := s.p.signalMarked(kctx, s.id, marker, "KILL", 0, untilAll); kerr != nil {
			s.p.logger.Warn("kill cancelled exec in the workstation", "sandbox_id", s.id, "err", kerr)
		}
		return err
	}
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	res := sandbox.ExecResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: -1}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return res, fmt.Errorf("exec in sandbox %s: %w", s.id, ctxErr)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return res, fmt.Errorf("exec in sandbox %s: %w", s.id, err)
	}
	if res.ExitCode != 0 && dockerFailed(res.Stderr) {
		// The docker CLI failed, not the script: say why.
		if rerr := s.p.running(ctx, s.id); rerr != nil {
			return res, fmt.Errorf("exec in sandbox %s: %w", s.id, rerr)
		}
		if bytes.HasPrefix(res.Stderr, []byte("OCI runtime exec failed")) {
			return res, fmt.Errorf("exec in sandbox %s: %s", s.id, bytes.TrimSpace(res.Stderr))
		}
	}
	return res, nil
}

// dockerFailed reports whether stderr begins the way the docker CLI's own
// errors do (as opposed to what a script prints).
func dockerFailed(stderr []byte) bool {
	for _, p := range []string{"Error: No such container", "Error response from daemon:", "OCI runtime exec failed"} {
		if bytes.HasPrefix(stderr, []byte(p)) {
			return true
		}
	}
	return false
}

// running returns nil when the sandbox's workstation is running, an error
// wrapping sandbox.ErrNotFound when it does not exist, and an error saying
// so when it is stopped.
func (p *Provider) running(ctx context.Context, id string) error {
	out, err := p.docker.run(ctx, nil, "container", "inspect", "--format", "{{.State.Running}}", workstationName(id))
	if err != nil {
		if ctx.Err() == nil && strings.Contains(strings.ToLower(stderrOf(err)), "no such") {
			return fmt.Errorf("workstation %s: %w", workstationName(id), sandbox.ErrNotFound)
		}
		return err
	}
	if strings.TrimSpace(string(out)) != "true" {
		return fmt.Errorf("workstation %s is not running", workstationName(id))
	}
	return nil
}

// engineHost returns tcp://<engine IP>:2375, the learner's engine as the
// host reaches it on the sandbox network.
func (p *Provider) engineHost(ctx context.Context, id string) (string, error) {
	return p.endpoints.get(ctx, id+"/engine", func(ctx context.Context) (string, error) { return p.lookupEngineHost(ctx, id) })
}

func (p *Provider) lookupEngineHost(ctx context.Context, id string) (string, error) {
	out, err := p.docker.run(ctx, nil, "container", "inspect", "--format", "{{json .NetworkSettings.Networks}}", engineName(id))
	if err != nil {
		if ctx.Err() == nil && strings.Contains(strings.ToLower(stderrOf(err)), "no such") {
			return "", fmt.Errorf("engine of sandbox %s: %w", id, sandbox.ErrNotFound)
		}
		return "", fmt.Errorf("engine of sandbox %s: %w", id, err)
	}
	ip, err := networkIP(out, networkName(id))
	if err != nil {
		return "", fmt.Errorf("engine of sandbox %s: %w", id, err)
	}
	return "tcp://" + ip + ":" + enginePort, nil
}

// networkIP reads a container's address on network from the JSON of its
// .NetworkSettings.Networks.
func networkIP(networksJSON []byte, network string) (string, error) {
	var nets map[string]struct{ IPAddress string }
	if err := json.Unmarshal(networksJSON, &nets); err != nil {
		return "", fmt.Errorf("parse networks: %w", err)
	}
	n, ok := nets[network]
	if !ok || n.IPAddress == "" {
		return "", fmt.Errorf("no address on network %s (is the container running?)", network)
	}
	return n.IPAddress, nil
}

// killScript signals the workstation's processes that carry a marker
// ($2, NAME=value) in their environment with signal $1, then waits up to
// $3 tenths of a second for them all ($4 "all") or for the one that leads
// its session ($4 "leader", a terminal's login shell) to be gone. It
// prints how many it signalled and exits 0 when they are gone, 1
// otherwise. It runs as the learner, the owner of those processes.
const killScript = `sig=$1 marker=$2 wait=$3 until=$4
marked() {
	for d in /proc/[0-9]*; do
		while IFS= read -r -d '' e; do
			if [ "$e" = "$marker" ]; then echo "${d#/proc/}"; break; fi
		done 2>/dev/null <"$d/environ"
	done
}
leader() {
	for pid in $(marked); do
		read -r stat 2>/dev/null <"/proc/$pid/stat" || continue
		set -- ${stat##*) }
		[ "$4" = "$pid" ] && echo "$pid"
	done
}
pids=$(marked)
n=0
for pid in $pids; do kill -s "$sig" "$pid" 2>/dev/null && n=$((n+1)); done
echo "$n"
watch=marked
[ "$until" = leader ] && watch=leader
left=$($watch)
i=0
while [ -n "$left" ]; do
	[ "$i" -ge "$wait" ] && exit 1
	sleep 0.1
	i=$((i+1))
	left=$($watch)
done
exit 0`

// Whom signalMarked waits for.
const (
	untilAll    = "all"    // every marked process
	untilLeader = "leader" // the session leader: a terminal's login shell
)

// signalMarked sends sig to the workstation's processes marked with
// marker and waits up to wait for them (until: untilAll or untilLeader)
// to end. It reports whether they did.
func (p *Provider) signalMarked(ctx context.Context, id, marker, sig string, wait time.Duration, until string) (bool, error) {
	tenths := strconv.Itoa(int(wait / (100 * time.Millisecond)))
	_, err := p.docker.run(ctx, nil, "exec", "--user", learnerUser, workstationName(id),
		"bash", "-c", killScript, "kubelab-kill", sig, marker, tenths, until)
	if err == nil {
		return true, nil
	}
	var ce *commandError
	var exitErr *exec.ExitError
	if errors.As(err, &ce) && errors.As(err, &exitErr) && exitErr.ExitCode() == 1 && len(ce.stderr) == 0 {
		return false, nil
	}
	return false, err
}

// newToken returns 16 random hex digits.
func newToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
