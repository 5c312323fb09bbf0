package kind

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// The host guard prepares the host once per process, before the first
// sandbox is made:
//
//   - fs.inotify limits: every kind node runs systemd, the kubelet and
//     containerd, which each hold inotify instances; Debian's default of
//     128 instances per user stops the third or fourth cluster on a host
//     ("too many open files"). They are raised when lower and allowed.
//   - the firewall: every sandbox network's bridge is named klb-… (see
//     bridgeName), and two iptables chains match them all. KUBELAB-INPUT
//     refuses any connection from a sandbox to the host itself (kubelab's
//     port, dockerd, sshd... on any of the host's addresses); replies to
//     connections the host opened (the API server kind publishes, the
//     engine the checkers query) still pass. KUBELAB-FORWARD refuses the
//     link-local range, where clouds serve instance metadata
//     (169.254.169.254). Sandboxes reaching each other is already refused
//     by Docker, which isolates its bridges from one another.
//
// What cannot be done (no root, no iptables) is logged as a warning with
// the reason; sandboxes still work, less isolated.

// Firewall chains and the interface pattern they match.
const (
	inputChain   = "KUBELAB-INPUT"
	forwardChain = "KUBELAB-FORWARD"
	bridgeMatch  = "klb+" // every sandbox bridge: bridgePrefix without its dash, and +
)

// inotifyMinimums are the fs.inotify limits many kind clusters need.
var inotifyMinimums = []struct {
	key  string
	want int
}{
	{"fs/inotify/max_user_instances", 512},
	{"fs/inotify/max_user_watches", 524288},
}

var hostGuard sync.Once

// guardHost prepares the host, the first time it is called in the process.
func (p *Provider) guardHost(ctx context.Context) {
	hostGuard.Do(func() {
		p.logger.Info("container limits (memory bytes, cores, processes)", "workstation", p.opts.WorkstationLimits.String(),
			"engine", p.opts.EngineLimits.String(), "node", p.opts.NodeLimits.String())
		raiseInotify("/proc/sys", p.logger)
		if err := firewall(ctx, p.opts.IPTables); err != nil {
			p.logger.Warn("sandboxes are NOT isolated from the host's own ports and 169.254.169.254 (learners' containers can connect to services listening on the host)", "err", err)
			return
		}
		p.logger.Info("host firewall in place: sandbox networks ("+bridgeMatch+") cannot open connections to the host or to 169.254.0.0/16", "chains", inputChain+", "+forwardChain)
	})
}

// raiseInotify raises the inotify limits under procSys that are below
// what many clusters need, and logs what it did or why it could not.
func raiseInotify(procSys string, log *slog.Logger) {
	for _, m := range inotifyMinimums {
		path := procSys + "/" + m.key
		name := strings.ReplaceAll(m.key, "/", ".")
		data, err := os.ReadFile(path)
		if err != nil {
			log.Warn("cannot read an inotify limit", "sysctl", name, "err", err)
			continue
		}
		have, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || have >= m.want {
			continue
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(m.want)), 0o644); err != nil {
			log.Warn(fmt.Sprintf("%s is %d: kind clusters beyond the first few may fail to start; raise it with `sysctl -w %s=%d`", name, have, name, m.want), "err", err)
			continue
		}
		log.Info(fmt.Sprintf("raised %s from %d to %d (many kind clusters on one host need it)", name, have, m.want))
	}
}

// firewallRules are the rules of the two chains, in order.
func firewallRules() map[string][][]string {
	reject := []string{"-j", "REJECT", "--reject-with", "icmp-admin-prohibited"}
	return map[string][][]string{
		inputChain: {
			{"-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"},
			reject,
		},
		forwardChain: {
			append([]string{"-d", "169.254.0.0/16"}, reject...),
		},
	}
}

// firewall installs the chains (emptied and filled again, so a new
// version of the rules replaces an old one) and the jumps to them: from
// INPUT for packets that come in on a sandbox bridge, and from Docker's
// DOCKER-USER chain (or FORWARD when Docker made none) for packets a
// sandbox sends elsewhere. It is idempotent.
func firewall(ctx context.Context, bin string) error {
	if bin == "" {
		bin = "iptables"
	}
	ipt := func(args ...string) error {
		out, err := exec.CommandContext(ctx, bin, append([]string{"-w", "5"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Errorf("no %s on this host: %w", bin, err)
	}
	for chain, rules := range firewallRules() {
		if ipt("-n", "-L", chain) != nil {
			if err := ipt("-N", chain); err != nil {
				return err
			}
		}
		if err := ipt("-F", chain); err != nil {
			return err
		}
		for _, r := range rules {
			if err := ipt(append([]string{"-A", chain}, r...)...); err != nil {
				return err
			}
		}
	}
	forward := "DOCKER-USER"
	if ipt("-n", "-L", forward) != nil {
		forward = "FORWARD"
	}
	jumps := []struct{ from, to string }{{"INPUT", inputChain}, {forward, forwardChain}}
	for _, j := range jumps {
		rule := []string{j.from, "-i", bridgeMatch, "-j", j.to}
		if ipt(append([]string{"-C"}, rule...)...) == nil {
			continue
		}
		if err := ipt(append([]string{"-I"}, rule...)...); err != nil {
			return err
		}
	}
	return nil
}
