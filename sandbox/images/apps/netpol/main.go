// Command kubelab-netpol is the network agent of kubelab's kind clusters,
// one per node (a DaemonSet on the host network with NET_ADMIN). It does
// two jobs the clusters' plain bridge network does not:
//
//   - NetworkPolicy: it watches pods, namespaces and NetworkPolicies and
//     keeps the node's iptables filter table enforcing them for the pods
//     on this node (see compile in policy.go), through a chain jumped to
//     first from FORWARD;
//   - routes between nodes: for every other node, a route to its pod
//     range through its address, so pods on different nodes reach each
//     other (what flannel's host-gw backend does, for one flat network).
//
// It needs NODE_NAME (the downward API) and the in-cluster configuration.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// resync is how often the rules and routes are rewritten even when nothing
// changed, which also puts the FORWARD jump back first if something moved it.
const resync = 30 * time.Second

// retryAfter is how soon a failed write of rules or routes is tried again.
const retryAfter = 2 * time.Second

// xtablesWait is how long iptables commands wait for the xtables lock that
// kube-proxy also takes (legacy backend), instead of failing at once.
const xtablesWait = "5"

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, logger); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("kubelab-netpol stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger) error {
	node := os.Getenv("NODE_NAME")
	if node == "" {
		return errors.New("NODE_NAME is not set (give it from spec.nodeName through the downward API)")
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return fmt.Errorf("in-cluster configuration: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods()
	namespaces := factory.Core().V1().Namespaces()
	nodes := factory.Core().V1().Nodes()
	policies := factory.Networking().V1().NetworkPolicies()

	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), namespaces.Informer(), nodes.Informer(), policies.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cache of %v did not sync", typ)
		}
	}
	logger.Info("kubelab-netpol watching", "node", node)

	a := &agent{node: node, logger: logger, routes: map[netip.Prefix]netip.Addr{}}
	l := listers{pods.Lister(), namespaces.Lister(), nodes.Lister(), policies.Lister()}
	tick := time.NewTicker(resync)
	defer tick.Stop()
	retry := time.NewTimer(retryAfter)
	retry.Stop()
	for {
		if err := a.apply(ctx, l.snapshot()); err != nil {
			logger.Error("apply", "err", err)
			retry.Reset(retryAfter) // a lock held by kube-proxy, say: soon again
		} else if err := markReady(); err != nil {
			logger.Error("mark ready", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
			// let a burst of events (a Deployment's pods) settle
			time.Sleep(100 * time.Millisecond)
		case <-tick.C:
			a.forced = true
		case <-retry.C:
			a.forced = true
		}
	}
}

// readyFile exists once rules and routes were written without an error:
// the DaemonSet's readiness probe tests it, and a sandbox waits for every
// node's agent to be ready before the lesson starts.
const readyFile = "/tmp/kubelab-netpol-ready"

func markReady() error {
	if _, err := os.Stat(readyFile); err == nil {
		return nil
	}
	return os.WriteFile(readyFile, nil, 0o644)
}

// state is one consistent read of the informers' caches.
type state struct {
	pods       []podInfo
	namespaces []nsInfo
	policies   []*networkingv1.NetworkPolicy
	nodes      []*corev1.Node
}

// agent keeps the node's rules and routes in line with the cluster.
type agent struct {
	node    string
	logger  *slog.Logger
	applied []byte                      // the last rules written
	routes  map[netip.Prefix]netip.Addr // the routes this agent added
	forced  bool                        // rewrite even if unchanged
}

// listers read the informers' caches.
type listers struct {
	pods       corelisters.PodLister
	namespaces corelisters.NamespaceLister
	nodes      corelisters.NodeLister
	policies   networkinglisters.NetworkPolicyLister
}

// snapshot reads the caches. A lister of a synced informer does not fail.
func (l listers) snapshot() state {
	var s state
	all := labels.Everything()
	pods, _ := l.pods.List(all)
	for _, p := range pods {
		s.pods = append(s.pods, podFrom(p))
	}
	namespaces, _ := l.namespaces.List(all)
	for _, ns := range namespaces {
		s.namespaces = append(s.namespaces, nsInfo{Name: ns.Name, Labels: ns.Labels})
	}
	s.policies, _ = l.policies.List(all)
	s.nodes, _ = l.nodes.List(all)
	return s
}

// podFrom keeps what the rules need of a pod. A pod that has finished no
// longer owns its address.
func podFrom(p *corev1.Pod) podInfo {
	info := podInfo{
		Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, Node: p.Spec.NodeName,
		HostNetwork: p.Spec.HostNetwork,
	}
	if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
		if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			info.IP = ip
		}
	}
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			info.Ports = append(info.Ports, namedPort{Name: port.Name, Protocol: port.Protocol, Port: port.ContainerPort})
		}
	}
	return info
}

func (a *agent) apply(ctx context.Context, s state) error {
	var errs []error
	if err := a.applyRules(ctx, s); err != nil {
		errs = append(errs, err)
	}
	if err := a.applyRoutes(ctx, s.nodes); err != nil {
		errs = append(errs, err)
	}
	a.forced = false
	return errors.Join(errs...)
}

func (a *agent) applyRules(ctx context.Context, s state) error {
	rules := compile(a.node, s.pods, s.namespaces, s.policies)
	saved, err := output(ctx, nil, "iptables-save", "-t", "filter")
	if err != nil {
		return err
	}
	input := rules.restore(chainNames(saved))
	if !a.forced && bytes.Equal(input, a.applied) && jumpFirst(saved) {
		return nil
	}
	if _, err := output(ctx, input, "iptables-restore", "-w", xtablesWait, "--noflush"); err != nil {
		return err
	}
	if err := a.ensureJump(ctx); err != nil {
		return err
	}
	if !bytes.Equal(input, a.applied) {
		a.logger.Info("rules written", "lines", bytes.Count(input, []byte("\n-A ")))
	}
	a.applied = input
	return nil
}

// chainNames lists the chains of an iptables-save output.
func chainNames(saved []byte) []string {
	var names []string
	for line := range strings.SplitSeq(string(saved), "\n") {
		if name, ok := strings.CutPrefix(line, ":"); ok {
			names = append(names, strings.Fields(name)[0])
		}
	}
	return names
}

var jumpRule = "-A FORWARD -j " + mainChain

// jumpFirst tells whether FORWARD's first rule is the jump to mainChain.
func jumpFirst(saved []byte) bool {
	for line := range strings.SplitSeq(string(saved), "\n") {
		if strings.HasPrefix(line, "-A FORWARD ") {
			return line == jumpRule
		}
	}
	return false
}

// ensureJump makes the jump to mainChain FORWARD's first rule: Docker and
// kube-proxy add ACCEPT rules there that must not pass traffic around us.
func (a *agent) ensureJump(ctx context.Context) error {
	out, err := output(ctx, nil, "iptables", "-w", xtablesWait, "-S", "FORWARD")
	if err != nil {
		return err
	}
	var rules []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.HasPrefix(line, "-A FORWARD") {
			rules = append(rules, line)
		}
	}
	if len(rules) > 0 && rules[0] == jumpRule {
		return nil
	}
	if slices.Contains(rules, jumpRule) {
		if _, err := output(ctx, nil, "iptables", "-w", xtablesWait, "-D", "FORWARD", "-j", mainChain); err != nil {
			return err
		}
	}
	_, err = output(ctx, nil, "iptables", "-w", xtablesWait, "-I", "FORWARD", "1", "-j", mainChain)
	return err
}

// applyRoutes routes every other node's pod range through that node.
func (a *agent) applyRoutes(ctx context.Context, nodes []*corev1.Node) error {
	want := map[netip.Prefix]netip.Addr{}
	for _, n := range nodes {
		if n.Name == a.node {
			continue
		}
		via, ok := internalIP(n)
		if !ok {
			continue
		}
		for _, c := range podCIDRs(n) {
			if pfx, err := netip.ParsePrefix(c); err == nil && pfx.Addr().Is4() == via.Is4() {
				want[pfx] = via
			}
		}
	}
	var errs []error
	for pfx, via := range want {
		if a.routes[pfx] == via && !a.forced {
			continue
		}
		if _, err := output(ctx, nil, "ip", "route", "replace", pfx.String(), "via", via.String()); err != nil {
			errs = append(errs, err)
			continue
		}
		if a.routes[pfx] != via {
			a.logger.Info("route", "to", pfx, "via", via)
		}
		a.routes[pfx] = via
	}
	for pfx, via := range a.routes {
		if _, ok := want[pfx]; ok {
			continue
		}
		if _, err := output(ctx, nil, "ip", "route", "del", pfx.String(), "via", via.String()); err != nil {
			errs = append(errs, err)
			continue
		}
		a.logger.Info("route removed", "to", pfx, "via", via)
		delete(a.routes, pfx)
	}
	return errors.Join(errs...)
}

func internalIP(n *corev1.Node) (netip.Addr, bool) {
	for _, addr := range n.Status.Addresses {
		if addr.Type == corev1.NodeInternalIP {
			if ip, err := netip.ParseAddr(addr.Address); err == nil && ip.Is4() {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}

func podCIDRs(n *corev1.Node) []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	if n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return nil
}

// output runs a command with stdin and returns its standard output; the
// error carries its standard error.
func output(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
