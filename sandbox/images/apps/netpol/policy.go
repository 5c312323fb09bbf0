package main

// This file compiles NetworkPolicies into iptables rules for the pods of
// one node. It is pure: compile reads the cluster state and returns a
// ruleset, restore renders it as iptables-restore input. main.go does the
// I/O.
//
// Shape of the rules (filter table, jumped to first from FORWARD):
//
//	-A KUBELAB-NETPOL -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
//	-A KUBELAB-NETPOL -s <local pod>/32 -j KLNP-E-<hash>   (isolated for egress)
//	-A KUBELAB-NETPOL -d <local pod>/32 -j KLNP-I-<hash>   (isolated for ingress)
//	-A KLNP-I-<hash> [-s <peer>] [-p <proto> [-m <proto> --dport <n>[:<m>]]] -m comment --comment "<ns>/<policy>" -j RETURN
//	-A KLNP-I-<hash> -j DROP
//
// A packet that falls off the end of KUBELAB-NETPOL goes back to FORWARD,
// that is it is allowed. Only IPv4 is enforced: the clusters are IPv4.

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	// mainChain is the chain FORWARD jumps to; compile fills it.
	mainChain = "KUBELAB-NETPOL"
	// chainPrefix starts the name of every per-pod chain, so that restore
	// can find and delete the ones no longer used.
	chainPrefix = "KLNP-"
	// hashLen is how many base32 characters of a pod's hash name its chain.
	hashLen = 12
	// maxCommentLen is the longest comment the comment match accepts.
	maxCommentLen = 255
)

// podInfo is what the enforcer needs to know about one pod.
type podInfo struct {
	Namespace, Name string
	Labels          map[string]string
	IP              netip.Addr // invalid (zero) when the pod has no IP yet: ignore it
	Node            string
	HostNetwork     bool        // hostNetwork pods are never selected and never peers
	Ports           []namedPort // every container port of every container
}

// namedPort is one container port of a pod.
type namedPort struct {
	Name     string
	Protocol corev1.Protocol // "" means TCP
	Port     int32
}

// nsInfo is what the enforcer needs to know about one namespace.
type nsInfo struct {
	Name   string
	Labels map[string]string
}

// ruleset is the compiled form of the policies for one node.
type ruleset struct {
	// Main holds the rules of mainChain, without the "-A <chain>" head.
	Main []string
	// Chains holds the per-pod chains, sorted by name.
	Chains []chain
}

// chain is one per-pod chain.
type chain struct {
	Name string
	// Rules are the rules without the "-A <chain>" head: the allow rules,
	// sorted, then the final DROP.
	Rules []string
}

// compile returns the rules that enforce policies for the pods on node.
// The result does not depend on the order of its inputs.
func compile(node string, pods []podInfo, namespaces []nsInfo, policies []*networkingv1.NetworkPolicy) ruleset {
	c := newCluster(pods, namespaces, policies)
	rs := ruleset{Main: []string{"-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"}}
	var ingressJumps []string
	for i := range c.endpoints {
		pod := &c.endpoints[i]
		if pod.Node != node {
			continue
		}
		ingress, egress := c.selecting(pod)
		if len(egress) > 0 {
			name := chainName("E-", pod)
			rs.Main = append(rs.Main, fmt.Sprintf("-s %s -j %s", hostPrefix(pod.IP), name))
			rs.Chains = append(rs.Chains, newChain(name, c.egressRules(egress)))
		}
		if len(ingress) > 0 {
			name := chainName("I-", pod)
			ingressJumps = append(ingressJumps, fmt.Sprintf("-d %s -j %s", hostPrefix(pod.IP), name))
			rs.Chains = append(rs.Chains, newChain(name, c.ingressRules(pod, ingress)))
		}
	}
	rs.Main = append(rs.Main, ingressJumps...)
	slices.SortFunc(rs.Chains, func(a, b chain) int { return strings.Compare(a.Name, b.Name) })
	return rs
}

// restore renders the ruleset as input for `iptables-restore --noflush`
// (table filter), deleting the chains in existing (names of chains
// currently in the table, as listed by `iptables-save -t filter`) that
// start with chainPrefix and are no longer used. Declaring a chain flushes
// it, so every chain written is rewritten whole.
func (r ruleset) restore(existing []string) []byte {
	stale := r.stale(existing)
	var b bytes.Buffer
	b.WriteString("*filter\n")
	fmt.Fprintf(&b, ":%s - [0:0]\n", mainChain)
	for _, ch := range r.Chains {
		fmt.Fprintf(&b, ":%s - [0:0]\n", ch.Name)
	}
	for _, name := range stale {
		fmt.Fprintf(&b, ":%s - [0:0]\n", name)
	}
	for _, rule := range r.Main {
		fmt.Fprintf(&b, "-A %s %s\n", mainChain, rule)
	}
	for _, ch := range r.Chains {
		for _, rule := range ch.Rules {
			fmt.Fprintf(&b, "-A %s %s\n", ch.Name, rule)
		}
	}
	for _, name := range stale {
		fmt.Fprintf(&b, "-X %s\n", name)
	}
	b.WriteString("COMMIT\n")
	return b.Bytes()
}

// stale returns, sorted and without duplicates, the chains of existing
// that belong to the enforcer and that the ruleset no longer uses.
func (r ruleset) stale(existing []string) []string {
	var stale []string
	for _, name := range existing {
		if name == mainChain || !strings.HasPrefix(name, chainPrefix) {
			continue
		}
		used := slices.ContainsFunc(r.Chains, func(ch chain) bool { return ch.Name == name })
		if !used {
			stale = append(stale, name)
		}
	}
	slices.Sort(stale)
	return slices.Compact(stale)
}

// newChain returns a per-pod chain: the allow rules, sorted and without
// duplicates, then DROP.
func newChain(name string, allow []string) chain {
	slices.Sort(allow)
	allow = slices.Compact(allow)
	return chain{Name: name, Rules: append(allow, "-j DROP")}
}

// chainName names the chain of pod for one direction ("E-" or "I-"):
// chainPrefix, the direction, and a hash of the pod's namespace/name.
func chainName(direction string, pod *podInfo) string {
	sum := sha256.Sum256([]byte(pod.Namespace + "/" + pod.Name))
	hash := strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))
	return chainPrefix + direction + hash[:hashLen]
}

// hostPrefix is the /32 prefix of one address.
func hostPrefix(ip netip.Addr) netip.Prefix {
	return netip.PrefixFrom(ip, ip.BitLen())
}

// cluster indexes the cluster state for compile.
type cluster struct {
	// endpoints are the pods that can be selected and be peers: an IPv4
	// address, not on the host network. Sorted by namespace/name.
	endpoints []podInfo
	// nsLabels gives the labels of each namespace.
	nsLabels map[string]labels.Set
	// policies sorted by namespace/name.
	policies []*networkingv1.NetworkPolicy
}

// newCluster indexes the state, keeping only the pods that count and
// sorting everything so that the output is deterministic.
func newCluster(pods []podInfo, namespaces []nsInfo, policies []*networkingv1.NetworkPolicy) *cluster {
	c := &cluster{nsLabels: map[string]labels.Set{}}
	for _, pod := range pods {
		pod.IP = pod.IP.Unmap()
		if pod.HostNetwork || !pod.IP.Is4() {
			continue
		}
		c.endpoints = append(c.endpoints, pod)
	}
	slices.SortFunc(c.endpoints, func(a, b podInfo) int {
		return cmp.Or(
			strings.Compare(a.Namespace, b.Namespace),
			strings.Compare(a.Name, b.Name),
			a.IP.Compare(b.IP),
			strings.Compare(a.Node, b.Node),
		)
	})
	for _, ns := range namespaces {
		c.nsLabels[ns.Name] = labels.Set(ns.Labels)
	}
	for _, pol := range policies {
		if pol != nil {
			c.policies = append(c.policies, pol)
		}
	}
	slices.SortFunc(c.policies, func(a, b *networkingv1.NetworkPolicy) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return c
}

// selecting returns the policies that select pod and isolate it for
// ingress, and those that isolate it for egress.
func (c *cluster) selecting(pod *podInfo) (ingress, egress []*networkingv1.NetworkPolicy) {
	for _, pol := range c.policies {
		if pol.Namespace != pod.Namespace || !selects(&pol.Spec.PodSelector, pod.Labels) {
			continue
		}
		in, out := policyTypes(pol)
		if in {
			ingress = append(ingress, pol)
		}
		if out {
			egress = append(egress, pol)
		}
	}
	return ingress, egress
}

// policyTypes tells which directions pol isolates. Without policyTypes a
// policy always isolates for ingress, and for egress if it has egress
// rules.
func policyTypes(pol *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(pol.Spec.PolicyTypes) == 0 {
		return true, len(pol.Spec.Egress) > 0
	}
	for _, t := range pol.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

// selects tells whether a label selector matches a set of labels. An
// empty selector matches everything; a nil or invalid one nothing (the
// API server rejects invalid selectors, so that does not happen).
func selects(sel *metav1.LabelSelector, set map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(set))
}

// ingressRules returns the allow rules of the ingress chain of pod, the
// union of the ingress rules of the policies.
func (c *cluster) ingressRules(pod *podInfo, policies []*networkingv1.NetworkPolicy) []string {
	var rules []string
	for _, pol := range policies {
		comment := policyComment(pol)
		for _, rule := range pol.Spec.Ingress {
			ports := allPorts
			if len(rule.Ports) > 0 {
				ports = matchPorts(rule.Ports, pod)
			}
			for _, peer := range c.peers(pol.Namespace, rule.From) {
				rules = append(rules, allowRules("-s", peer.prefix, ports, comment)...)
			}
		}
	}
	return rules
}

// egressRules returns the allow rules of the egress chain of a pod, the
// union of the egress rules of the policies.
func (c *cluster) egressRules(policies []*networkingv1.NetworkPolicy) []string {
	var rules []string
	for _, pol := range policies {
		comment := policyComment(pol)
		for _, rule := range pol.Spec.Egress {
			rules = append(rules, c.egressRule(pol.Namespace, rule, comment)...)
		}
	}
	return rules
}

// egressRule returns the allow rules of one egress rule of a policy in
// namespace ns. A named port is resolved against each destination pod; a
// rule to every destination resolves it against every pod of the cluster
// (an address outside the cluster has no named ports).
func (c *cluster) egressRule(ns string, rule networkingv1.NetworkPolicyEgressRule, comment string) []string {
	if len(rule.Ports) == 0 {
		var rules []string
		for _, peer := range c.peers(ns, rule.To) {
			rules = append(rules, allowRules("-d", peer.prefix, allPorts, comment)...)
		}
		return rules
	}
	if len(rule.To) == 0 {
		numeric, named := splitPorts(rule.Ports)
		rules := allowRules("-d", netip.Prefix{}, matchPorts(numeric, nil), comment)
		for i := range c.endpoints {
			dst := &c.endpoints[i]
			rules = append(rules, allowRules("-d", hostPrefix(dst.IP), matchPorts(named, dst), comment)...)
		}
		return rules
	}
	var rules []string
	for _, peer := range c.peers(ns, rule.To) {
		rules = append(rules, allowRules("-d", peer.prefix, matchPorts(rule.Ports, peer.pod), comment)...)
	}
	return rules
}

// policyComment is the comment of the rules a policy allows:
// "<namespace>/<name>", restricted to characters safe in iptables-restore
// input and to the length the comment match accepts.
func policyComment(pol *networkingv1.NetworkPolicy) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("./-_:", r):
			return r
		}
		return '_'
	}, pol.Namespace+"/"+pol.Name)
	if len(safe) > maxCommentLen {
		safe = safe[:maxCommentLen]
	}
	return safe
}

// allowRules returns one RETURN rule per port match, with a match on the
// other end of the connection (flag "-s" or "-d") unless peer is the zero
// prefix (every address).
func allowRules(flag string, peer netip.Prefix, ports []portMatch, comment string) []string {
	rules := make([]string, 0, len(ports))
	for _, port := range ports {
		var parts []string
		if peer.IsValid() {
			parts = append(parts, flag, peer.String())
		}
		if m := port.String(); m != "" {
			parts = append(parts, m)
		}
		parts = append(parts, "-m comment --comment", `"`+comment+`"`, "-j RETURN")
		rules = append(rules, strings.Join(parts, " "))
	}
	return rules
}

// peer is one source or destination a rule allows: an address prefix,
// and the pod when it is one (to resolve named ports). The zero peer is
// every address.
type peer struct {
	prefix netip.Prefix
	pod    *podInfo
}

// peers returns the sources (or destinations) a rule of a policy in
// namespace ns allows. An empty list allows every address.
func (c *cluster) peers(ns string, list []networkingv1.NetworkPolicyPeer) []peer {
	if len(list) == 0 {
		return []peer{{}}
	}
	var out []peer
	for _, p := range list {
		if p.IPBlock != nil {
			for _, pfx := range ipBlockPrefixes(p.IPBlock) {
				out = append(out, peer{prefix: pfx})
			}
			continue
		}
		for i := range c.endpoints {
			pod := &c.endpoints[i]
			if c.peerSelects(ns, p, pod) {
				out = append(out, peer{prefix: hostPrefix(pod.IP), pod: pod})
			}
		}
	}
	return out
}

// peerSelects tells whether a pod/namespace peer of a policy in namespace
// ns selects pod. Without namespaceSelector the peer means the policy's
// namespace; without podSelector, every pod of the namespaces it means.
func (c *cluster) peerSelects(ns string, p networkingv1.NetworkPolicyPeer, pod *podInfo) bool {
	if p.PodSelector == nil && p.NamespaceSelector == nil {
		return false
	}
	if p.NamespaceSelector == nil && pod.Namespace != ns {
		return false
	}
	if p.NamespaceSelector != nil && !selects(p.NamespaceSelector, c.nsLabels[pod.Namespace]) {
		return false
	}
	return p.PodSelector == nil || selects(p.PodSelector, pod.Labels)
}

// ipBlockPrefixes returns the IPv4 prefixes of an ipBlock: its cidr minus
// every except, as disjoint prefixes in address order. IPv6 blocks and
// unparsable ones give nothing.
func ipBlockPrefixes(block *networkingv1.IPBlock) []netip.Prefix {
	cidr, err := netip.ParsePrefix(block.CIDR)
	if err != nil || !cidr.Addr().Is4() {
		return nil
	}
	prefixes := []netip.Prefix{cidr.Masked()}
	for _, ex := range block.Except {
		except, err := netip.ParsePrefix(ex)
		if err != nil || !except.Addr().Is4() {
			continue
		}
		var rest []netip.Prefix
		for _, p := range prefixes {
			rest = append(rest, subtractPrefix(p, except.Masked())...)
		}
		prefixes = rest
	}
	return prefixes
}

// subtractPrefix returns p minus except as disjoint prefixes in address
// order: p itself when they do not overlap, nothing when except covers p,
// else the halves of p each minus except.
func subtractPrefix(p, except netip.Prefix) []netip.Prefix {
	switch {
	case !p.Overlaps(except):
		return []netip.Prefix{p}
	case except.Bits() <= p.Bits():
		return nil
	}
	low, high := halves(p)
	return append(subtractPrefix(low, except), subtractPrefix(high, except)...)
}

// halves splits an IPv4 prefix that is not a single address into its two
// halves.
func halves(p netip.Prefix) (low, high netip.Prefix) {
	bits := p.Bits() + 1
	a := p.Addr().As4()
	a[(bits-1)/8] |= 0x80 >> ((bits - 1) % 8)
	return netip.PrefixFrom(p.Addr(), bits), netip.PrefixFrom(netip.AddrFrom4(a), bits)
}

// portMatch matches a protocol and, unless lo is 0, destination ports
// lo to hi.
type portMatch struct {
	proto  string
	lo, hi int32
}

// allPorts is the match of every port and protocol.
var allPorts = []portMatch{{}}

// String renders the match as iptables options ("" for every protocol).
func (m portMatch) String() string {
	switch {
	case m.proto == "":
		return ""
	case m.lo == 0:
		return "-p " + m.proto
	case m.hi == m.lo:
		return fmt.Sprintf("-p %s -m %s --dport %d", m.proto, m.proto, m.lo)
	default:
		return fmt.Sprintf("-p %s -m %s --dport %d:%d", m.proto, m.proto, m.lo, m.hi)
	}
}

// matchPorts returns the matches of a rule's ports toward the destination
// pod dst (nil when the destination is not a pod: named ports then match
// nothing, as do unresolved ones and unknown protocols). It never means
// every port: the caller handles a rule without ports.
func matchPorts(ports []networkingv1.NetworkPolicyPort, dst *podInfo) []portMatch {
	var out []portMatch
	for _, p := range ports {
		proto, ok := protocolName(p.Protocol)
		if !ok {
			continue
		}
		switch {
		case p.Port == nil:
			out = append(out, portMatch{proto: proto})
		case p.Port.Type == intstr.Int:
			out = append(out, numericMatch(proto, p)...)
		case dst != nil:
			out = append(out, namedMatch(proto, p.Port.StrVal, dst)...)
		}
	}
	return out
}

// numericMatch returns the match of a numeric port, a range with endPort.
func numericMatch(proto string, p networkingv1.NetworkPolicyPort) []portMatch {
	lo := p.Port.IntVal
	if lo < 1 || lo > 65535 {
		return nil
	}
	hi := lo
	if p.EndPort != nil && *p.EndPort > lo && *p.EndPort <= 65535 {
		hi = *p.EndPort
	}
	return []portMatch{{proto: proto, lo: lo, hi: hi}}
}

// namedMatch resolves a named port against the container ports of dst
// with the same protocol.
func namedMatch(proto, name string, dst *podInfo) []portMatch {
	var out []portMatch
	for _, cp := range dst.Ports {
		cpProto, ok := containerProtocol(cp.Protocol)
		if ok && cp.Name == name && cpProto == proto && cp.Port >= 1 && cp.Port <= 65535 {
			out = append(out, portMatch{proto: proto, lo: cp.Port, hi: cp.Port})
		}
	}
	return out
}

// splitPorts separates the numeric (and port-less) ports from the named
// ones.
func splitPorts(ports []networkingv1.NetworkPolicyPort) (numeric, named []networkingv1.NetworkPolicyPort) {
	for _, p := range ports {
		if p.Port != nil && p.Port.Type == intstr.String {
			named = append(named, p)
		} else {
			numeric = append(numeric, p)
		}
	}
	return numeric, named
}

// protocolName is the iptables name of a protocol (TCP when unset); false
// for a protocol iptables rules here cannot match.
func protocolName(p *corev1.Protocol) (string, bool) {
	if p == nil {
		return "tcp", true
	}
	return containerProtocol(*p)
}

// containerProtocol is the iptables name of a container port's protocol
// ("" means TCP).
func containerProtocol(p corev1.Protocol) (string, bool) {
	switch p {
	case "", corev1.ProtocolTCP:
		return "tcp", true
	case corev1.ProtocolUDP:
		return "udp", true
	case corev1.ProtocolSCTP:
		return "sctp", true
	}
	return "", false
}
