package main

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// localNode is the node the tests compile for.
const localNode = "n1"

// testPods is the cluster the tests run in: pods on the local node n1 and
// on n2, a hostNetwork pod and a pod without an address yet.
func testPods() []podInfo {
	return []podInfo{
		{Namespace: "default", Name: "web", Labels: map[string]string{"app": "web"}, IP: ip("10.244.1.10"), Node: "n1",
			Ports: []namedPort{{Name: "http", Port: 80}, {Name: "metrics", Protocol: "TCP", Port: 9090}}},
		{Namespace: "default", Name: "db", Labels: map[string]string{"app": "db"}, IP: ip("10.244.1.11"), Node: "n1",
			Ports: []namedPort{{Name: "pg", Port: 5432}}},
		{Namespace: "default", Name: "client", Labels: map[string]string{"app": "client"}, IP: ip("10.244.2.10"), Node: "n2"},
		{Namespace: "default", Name: "remote-web", Labels: map[string]string{"app": "web"}, IP: ip("10.244.2.11"), Node: "n2",
			Ports: []namedPort{{Name: "http", Port: 8080}}},
		{Namespace: "default", Name: "hostnet", Labels: map[string]string{"app": "client"}, IP: ip("172.18.0.2"), Node: "n1", HostNetwork: true},
		{Namespace: "default", Name: "pending", Labels: map[string]string{"app": "web"}, Node: "n1"},
		{Namespace: "prod", Name: "api", Labels: map[string]string{"app": "api"}, IP: ip("10.244.1.20"), Node: "n1",
			Ports: []namedPort{{Name: "http", Port: 8080}}},
		{Namespace: "prod", Name: "client", Labels: map[string]string{"app": "client"}, IP: ip("10.244.2.20"), Node: "n2"},
		{Namespace: "dev", Name: "client", Labels: map[string]string{"app": "client"}, IP: ip("10.244.2.30"), Node: "n2"},
		{Namespace: "kube-system", Name: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"}, IP: ip("10.244.2.53"), Node: "n2",
			Ports: []namedPort{{Name: "dns", Protocol: "UDP", Port: 53}, {Name: "dns-tcp", Protocol: "TCP", Port: 53}}},
	}
}

// testNamespaces are the namespaces of testPods.
func testNamespaces() []nsInfo {
	return []nsInfo{
		{Name: "default", Labels: map[string]string{"kubernetes.io/metadata.name": "default"}},
		{Name: "prod", Labels: map[string]string{"kubernetes.io/metadata.name": "prod", "team": "a", "env": "prod"}},
		{Name: "dev", Labels: map[string]string{"kubernetes.io/metadata.name": "dev", "team": "a", "env": "dev"}},
		{Name: "kube-system", Labels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
	}
}

// ip parses an address the tests spell correctly.
func ip(s string) netip.Addr {
	return netip.MustParseAddr(s)
}

// addr resolves "namespace/name" of a test pod, or a literal address.
func addr(t *testing.T, s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a
	}
	for _, p := range testPods() {
		if p.Namespace+"/"+p.Name == s && p.IP.IsValid() {
			return p.IP
		}
	}
	t.Fatalf("no test pod %s", s)
	return netip.Addr{}
}

// policies decodes NetworkPolicies from YAML documents separated by "---".
func policies(t *testing.T, docs string) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for doc := range strings.SplitSeq(docs, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var pol networkingv1.NetworkPolicy
		if err := yaml.UnmarshalStrict([]byte(doc), &pol); err != nil {
			t.Fatalf("decode policy: %v\n%s", err, doc)
		}
		out = append(out, &pol)
	}
	return out
}

// check is one packet and whether the local node must let it through.
// port is "tcp/80"; src and dst are test pods or addresses.
type check struct {
	src, dst, port string
	established    bool
	allow          bool
}

// packetOf builds the packet of a check.
func packetOf(t *testing.T, c check) packet {
	proto, port, _ := strings.Cut(c.port, "/")
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("bad port %q", c.port)
	}
	return packet{src: addr(t, c.src), dst: addr(t, c.dst), proto: proto, port: n, established: c.established}
}

// enforce compiles the policies for the local node and loads the result
// into a fresh evaluator table.
func enforce(t *testing.T, pols []*networkingv1.NetworkPolicy) (*table, []byte) {
	t.Helper()
	out := compile(localNode, testPods(), testNamespaces(), pols).restore(nil)
	tbl := newTable()
	if err := tbl.restore(out); err != nil {
		t.Fatalf("restore output rejected: %v\n%s", err, out)
	}
	return tbl, out
}

const (
	denyIngressDefault = `
metadata: {namespace: default, name: deny-ingress}
spec:
  podSelector: {}
  policyTypes: [Ingress]
`
	denyEgressDefault = `
metadata: {namespace: default, name: deny-egress}
spec:
  podSelector: {}
  policyTypes: [Egress]
`
)

func TestSemantics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		policies string
		checks   []check
	}{
		{
			name: "no policy allows everything",
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "default/web", dst: "default/db", port: "tcp/5432", allow: true},
				{src: "default/web", dst: "8.8.8.8", port: "udp/53", allow: true},
				{src: "8.8.8.8", dst: "prod/api", port: "tcp/1", allow: true},
			},
		},
		{
			name:     "default-deny ingress",
			policies: denyIngressDefault,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: false},
				{src: "default/web", dst: "default/db", port: "tcp/5432", allow: false},
				{src: "8.8.8.8", dst: "default/web", port: "tcp/80", allow: false},
				// egress stays open, other namespaces are not selected
				{src: "default/web", dst: "8.8.8.8", port: "udp/53", allow: true},
				{src: "default/web", dst: "prod/api", port: "tcp/8080", allow: true},
				// hostNetwork pods are never selected
				{src: "default/client", dst: "172.18.0.2", port: "tcp/22", allow: true},
				// a selected pod on another node is that node's business
				{src: "default/client", dst: "default/remote-web", port: "tcp/8080", allow: true},
			},
		},
		{
			name: "policyTypes unset: ingress only without egress rules",
			policies: `
metadata: {namespace: default, name: deny}
spec:
  podSelector: {}
`,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: false},
				{src: "default/web", dst: "8.8.8.8", port: "tcp/443", allow: true},
			},
		},
		{
			name: "policyTypes unset: egress too with egress rules",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  egress:
  - to: [{podSelector: {matchLabels: {app: db}}}]
`,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: false},
				{src: "default/web", dst: "default/db", port: "tcp/5432", allow: true},
				{src: "default/web", dst: "8.8.8.8", port: "tcp/443", allow: false},
			},
		},
		{
			name: "allow from podSelector: the policy's namespace only, pods on any node",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
`,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "default/client", dst: "default/web", port: "udp/9999", allow: true},
				{src: "prod/client", dst: "default/web", port: "tcp/80", allow: false},
				{src: "default/db", dst: "default/web", port: "tcp/80", allow: false},
				// hostNetwork pods are never peers
				{src: "172.18.0.2", dst: "default/web", port: "tcp/80", allow: false},
				// db is not selected
				{src: "prod/client", dst: "default/db", port: "tcp/5432", allow: true},
			},
		},
		{
			name: "allow from namespaceSelector: every pod of those namespaces",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: a}}}]
`,
			checks: []check{
				{src: "prod/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "prod/api", dst: "default/web", port: "tcp/80", allow: true},
				{src: "dev/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: false},
				{src: "kube-system/coredns", dst: "default/web", port: "tcp/80", allow: false},
			},
		},
		{
			name: "empty namespaceSelector: every pod of every namespace, no outside address",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {}}]
`,
			checks: []check{
				{src: "kube-system/coredns", dst: "default/web", port: "tcp/80", allow: true},
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "8.8.8.8", dst: "default/web", port: "tcp/80", allow: false},
				{src: "172.18.0.2", dst: "default/web", port: "tcp/80", allow: false},
			},
		},
		{
			name: "namespaceSelector and podSelector in one peer: AND",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {env: prod}}
      podSelector: {matchLabels: {app: client}}
`,
			checks: []check{
				{src: "prod/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "prod/api", dst: "default/web", port: "tcp/80", allow: false},
				{src: "dev/client", dst: "default/web", port: "tcp/80", allow: false},
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: false},
			},
		},
		{
			name: "namespaceSelector and podSelector in two peers: OR",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {env: prod}}
    - podSelector: {matchLabels: {app: client}}
`,
			checks: []check{
				{src: "prod/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "prod/api", dst: "default/web", port: "tcp/80", allow: true},
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "dev/client", dst: "default/web", port: "tcp/80", allow: false},
			},
		},
		{
			name: "ipBlock with except",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - ipBlock: {cidr: 192.168.0.0/16, except: [192.168.1.0/24, 192.168.200.7/32]}
    - ipBlock: {cidr: "fd00::/8"}
`,
			checks: []check{
				{src: "192.168.2.7", dst: "default/web", port: "tcp/80", allow: true},
				{src: "192.168.0.1", dst: "default/web", port: "tcp/80", allow: true},
				{src: "192.168.255.255", dst: "default/web", port: "tcp/80", allow: true},
				{src: "192.168.200.6", dst: "default/web", port: "tcp/80", allow: true},
				{src: "192.168.1.5", dst: "default/web", port: "tcp/80", allow: false},
				{src: "192.168.200.7", dst: "default/web", port: "tcp/80", allow: false},
				{src: "8.8.8.8", dst: "default/web", port: "tcp/80", allow: false},
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: false},
			},
		},
		{
			name: "egress ipBlock",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 8.8.0.0/16, except: [8.8.4.0/24]}}]
    ports: [{port: 443}]
`,
			checks: []check{
				{src: "default/web", dst: "8.8.8.8", port: "tcp/443", allow: true},
				{src: "default/web", dst: "8.8.4.4", port: "tcp/443", allow: false},
				{src: "default/web", dst: "8.8.8.8", port: "tcp/80", allow: false},
				{src: "default/web", dst: "1.1.1.1", port: "tcp/443", allow: false},
			},
		},
		{
			name: "numeric port",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - ports: [{port: 80}]
`,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "8.8.8.8", dst: "default/web", port: "tcp/80", allow: true},
				{src: "default/client", dst: "default/web", port: "tcp/81", allow: false},
				{src: "default/client", dst: "default/web", port: "udp/80", allow: false},
			},
		},
		{
			name: "port range",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - ports: [{protocol: TCP, port: 8000, endPort: 8100}]
`,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/8000", allow: true},
				{src: "default/client", dst: "default/web", port: "tcp/8050", allow: true},
				{src: "default/client", dst: "default/web", port: "tcp/8100", allow: true},
				{src: "default/client", dst: "default/web", port: "tcp/7999", allow: false},
				{src: "default/client", dst: "default/web", port: "tcp/8101", allow: false},
			},
		},
		{
			name: "named port on ingress resolves against the local pod",
			policies: `
metadata: {namespace: default, name: all}
spec:
  podSelector: {}
  ingress:
  - ports: [{port: http}, {port: pg}]
`,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "default/client", dst: "default/web", port: "tcp/5432", allow: false},
				{src: "default/client", dst: "default/web", port: "tcp/9090", allow: false},
				{src: "default/client", dst: "default/db", port: "tcp/5432", allow: true},
				{src: "default/client", dst: "default/db", port: "tcp/80", allow: false},
			},
		},
		{
			name: "named port with another protocol or unknown name matches nothing",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - ports: [{port: http, protocol: UDP}, {port: nope}]
`,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: false},
				{src: "default/client", dst: "default/web", port: "udp/80", allow: false},
				{src: "default/client", dst: "default/web", port: "tcp/1", allow: false},
			},
		},
		{
			name: "named port on egress resolves against each peer pod",
			policies: `
metadata: {namespace: default, name: db}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: http}]
  - to: [{ipBlock: {cidr: 0.0.0.0/0}}]
    ports: [{port: http}]
`,
			checks: []check{
				{src: "default/db", dst: "default/web", port: "tcp/80", allow: true},
				{src: "default/db", dst: "default/remote-web", port: "tcp/8080", allow: true},
				{src: "default/db", dst: "default/remote-web", port: "tcp/80", allow: false},
				{src: "default/db", dst: "default/web", port: "tcp/8080", allow: false},
				{src: "default/db", dst: "8.8.8.8", port: "tcp/80", allow: false},
			},
		},
		{
			name: "named port on egress to every destination resolves against every pod",
			policies: `
metadata: {namespace: default, name: db}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Egress]
  egress:
  - ports: [{port: http}, {port: 443}]
`,
			checks: []check{
				{src: "default/db", dst: "default/web", port: "tcp/80", allow: true},
				{src: "default/db", dst: "prod/api", port: "tcp/8080", allow: true},
				{src: "default/db", dst: "prod/api", port: "tcp/80", allow: false},
				{src: "default/db", dst: "8.8.8.8", port: "tcp/80", allow: false},
				{src: "default/db", dst: "8.8.8.8", port: "tcp/443", allow: true},
			},
		},
		{
			name: "protocol UDP vs TCP",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - ports: [{protocol: UDP, port: 53}, {protocol: SCTP}]
`,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "udp/53", allow: true},
				{src: "default/client", dst: "default/web", port: "tcp/53", allow: false},
				{src: "default/client", dst: "default/web", port: "udp/54", allow: false},
				{src: "default/client", dst: "default/web", port: "sctp/9999", allow: true},
			},
		},
		{
			name: "protocol without port: every port of that protocol",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - ports: [{protocol: UDP}]
`,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "udp/1", allow: true},
				{src: "default/client", dst: "default/web", port: "udp/65535", allow: true},
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: false},
			},
		},
		{
			name:     "default-deny egress blocks DNS",
			policies: denyEgressDefault,
			checks: []check{
				{src: "default/web", dst: "kube-system/coredns", port: "udp/53", allow: false},
				{src: "default/web", dst: "default/db", port: "tcp/5432", allow: false},
				{src: "default/web", dst: "8.8.8.8", port: "tcp/443", allow: false},
				// ingress stays open
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: true},
			},
		},
		{
			name: "default-deny egress plus allow DNS",
			policies: denyEgressDefault + `
---
metadata: {namespace: default, name: allow-dns}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
      podSelector: {matchLabels: {k8s-app: kube-dns}}
    ports: [{protocol: UDP, port: dns}, {protocol: TCP, port: 53}]
`,
			checks: []check{
				{src: "default/web", dst: "kube-system/coredns", port: "udp/53", allow: true},
				{src: "default/web", dst: "kube-system/coredns", port: "tcp/53", allow: true},
				{src: "default/web", dst: "kube-system/coredns", port: "udp/54", allow: false},
				{src: "default/web", dst: "8.8.8.8", port: "udp/53", allow: false},
				{src: "default/web", dst: "default/db", port: "tcp/5432", allow: false},
			},
		},
		{
			name: "union of two policies",
			policies: `
metadata: {namespace: default, name: from-clients}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: 80}]
---
metadata: {namespace: default, name: metrics-from-prod}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {env: prod}}}]
    ports: [{port: metrics}]
`,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "default/client", dst: "default/web", port: "tcp/9090", allow: false},
				{src: "prod/client", dst: "default/web", port: "tcp/9090", allow: true},
				{src: "prod/client", dst: "default/web", port: "tcp/80", allow: false},
				// db is isolated by the second policy alone, and has no metrics port
				{src: "prod/client", dst: "default/db", port: "tcp/9090", allow: false},
				{src: "default/client", dst: "default/db", port: "tcp/5432", allow: false},
			},
		},
		{
			name: "a policy in another namespace does not select",
			policies: `
metadata: {namespace: prod, name: deny}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
`,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "default/web", dst: "8.8.8.8", port: "tcp/80", allow: true},
				{src: "default/client", dst: "prod/api", port: "tcp/8080", allow: false},
				{src: "prod/api", dst: "8.8.8.8", port: "tcp/80", allow: false},
				// web's traffic to api is stopped at api's ingress
				{src: "default/web", dst: "prod/api", port: "tcp/8080", allow: false},
			},
		},
		{
			name: "policyTypes [Egress] leaves ingress open even with ingress rules",
			policies: `
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: nobody}}}]
  egress:
  - to: [{podSelector: {matchLabels: {app: db}}}]
`,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: true},
				{src: "8.8.8.8", dst: "default/web", port: "tcp/80", allow: true},
				{src: "default/web", dst: "default/db", port: "tcp/5432", allow: true},
				{src: "default/web", dst: "8.8.8.8", port: "tcp/80", allow: false},
			},
		},
		{
			name:     "established replies always pass",
			policies: denyIngressDefault + "\n---\n" + denyEgressDefault,
			checks: []check{
				{src: "default/client", dst: "default/web", port: "tcp/80", allow: false},
				{src: "default/client", dst: "default/web", port: "tcp/80", established: true, allow: true},
				{src: "8.8.8.8", dst: "default/web", port: "tcp/40000", established: true, allow: true},
				{src: "default/web", dst: "8.8.8.8", port: "udp/53", allow: false},
				{src: "default/web", dst: "8.8.8.8", port: "udp/53", established: true, allow: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tbl, out := enforce(t, policies(t, tt.policies))
			for _, c := range tt.checks {
				got, err := tbl.allows(packetOf(t, c))
				if err != nil {
					t.Fatalf("evaluate %+v: %v", c, err)
				}
				if got != c.allow {
					t.Errorf("%s -> %s %s (established %v): allowed %v, want %v", c.src, c.dst, c.port, c.established, got, c.allow)
				}
			}
			if t.Failed() {
				t.Logf("rules:\n%s", out)
			}
		})
	}
}

// chainsOf returns the names of the per-pod chains of a ruleset.
func chainsOf(rs ruleset) []string {
	var names []string
	for _, ch := range rs.Chains {
		names = append(names, ch.Name)
	}
	return names
}

func TestChainsOnlyForLocalSelectedPods(t *testing.T) {
	t.Parallel()
	pods := testPods()
	rs := compile(localNode, pods, testNamespaces(), policies(t, denyIngressDefault))
	byName := map[string]*podInfo{}
	for i := range pods {
		byName[pods[i].Namespace+"/"+pods[i].Name] = &pods[i]
	}
	// web and db are local; client and remote-web are on n2; hostnet is on
	// the host network; pending has no address; api is in prod.
	want := []string{chainName("I-", byName["default/web"]), chainName("I-", byName["default/db"])}
	slices.Sort(want)
	if got := chainsOf(rs); !slices.Equal(got, want) {
		t.Errorf("chains %v, want %v", got, want)
	}
	if len(rs.Main) != 3 {
		t.Errorf("main chain %q, want the conntrack rule and two jumps", rs.Main)
	}
	for _, ch := range rs.Chains {
		if !slices.Equal(ch.Rules, []string{"-j DROP"}) {
			t.Errorf("chain %s = %q, want only DROP", ch.Name, ch.Rules)
		}
	}
}

func TestNoPolicyNoRules(t *testing.T) {
	t.Parallel()
	rs := compile(localNode, testPods(), testNamespaces(), nil)
	if len(rs.Chains) != 0 || !slices.Equal(rs.Main, []string{"-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"}) {
		t.Errorf("ruleset without policies = %+v", rs)
	}
}

func TestMainChainOrder(t *testing.T) {
	t.Parallel()
	rs := compile(localNode, testPods(), testNamespaces(), policies(t, denyIngressDefault+"\n---\n"+denyEgressDefault))
	if !strings.Contains(rs.Main[0], "--ctstate RELATED,ESTABLISHED -j RETURN") {
		t.Errorf("first rule %q, want the conntrack RETURN", rs.Main[0])
	}
	// egress jumps (-s) come before ingress jumps (-d)
	var kinds string
	for _, r := range rs.Main[1:] {
		kinds += r[:2]
	}
	if kinds != "-s-s-d-d" {
		t.Errorf("main chain %q, want two egress then two ingress jumps", rs.Main)
	}
}

func TestChainName(t *testing.T) {
	t.Parallel()
	long := podInfo{Namespace: strings.Repeat("n", 63), Name: strings.Repeat("p", 253)}
	short := podInfo{Namespace: "a", Name: "b"}
	for _, pod := range []podInfo{long, short} {
		for _, dir := range []string{"E-", "I-"} {
			name := chainName(dir, &pod)
			if len(name) > 28 || !strings.HasPrefix(name, chainPrefix+dir) {
				t.Errorf("chainName(%s, %s/%s) = %q", dir, pod.Namespace, pod.Name, name)
			}
		}
	}
	if chainName("I-", &long) == chainName("I-", &short) {
		t.Error("two pods share a chain name")
	}
}

func TestIPBlockPrefixes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cidr   string
		except []string
		want   string
	}{
		{cidr: "10.0.0.0/8", want: "10.0.0.0/8"},
		{cidr: "10.1.2.3/8", want: "10.0.0.0/8"},
		{cidr: "10.0.0.0/30", except: []string{"10.0.0.1/32"}, want: "10.0.0.0/32 10.0.0.2/31"},
		{cidr: "10.0.0.0/24", except: []string{"10.0.0.128/25"}, want: "10.0.0.0/25"},
		{cidr: "10.0.0.0/24", except: []string{"10.0.0.0/16"}, want: ""},
		{cidr: "10.0.0.0/24", except: []string{"10.0.1.0/24"}, want: "10.0.0.0/24"},
		{cidr: "0.0.0.0/0", except: []string{"128.0.0.0/2", "0.0.0.0/1"}, want: "192.0.0.0/2"},
		{cidr: "fd00::/8", want: ""},
		{cidr: "bad", want: ""},
	}
	for _, tt := range tests {
		var got []string
		for _, p := range ipBlockPrefixes(&networkingv1.IPBlock{CIDR: tt.cidr, Except: tt.except}) {
			got = append(got, p.String())
		}
		if s := strings.Join(got, " "); s != tt.want {
			t.Errorf("%s except %v = %q, want %q", tt.cidr, tt.except, s, tt.want)
		}
	}
}

// richPolicies is every policy of the tests at once.
const richPolicies = denyIngressDefault + "\n---\n" + denyEgressDefault + `
---
metadata: {namespace: default, name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: client}}
    - namespaceSelector: {matchLabels: {team: a}}
      podSelector: {matchLabels: {app: client}}
    - ipBlock: {cidr: 192.168.0.0/16, except: [192.168.1.0/24]}
    ports: [{port: http}, {protocol: UDP, port: 53}, {port: 8000, endPort: 8100}, {protocol: SCTP}]
  egress:
  - to: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: http}]
  - ports: [{port: http}, {port: 443}]
---
metadata: {namespace: prod, name: api}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{namespaceSelector: {}}]
  egress:
  - {}
`

func TestDeterministic(t *testing.T) {
	t.Parallel()
	pols := policies(t, richPolicies)
	want := compile(localNode, testPods(), testNamespaces(), pols).restore([]string{"KLNP-I-old", "KLNP-E-old"})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		pods, nss, ps := testPods(), testNamespaces(), slices.Clone(pols)
		rng.Shuffle(len(pods), func(i, j int) { pods[i], pods[j] = pods[j], pods[i] })
		rng.Shuffle(len(nss), func(i, j int) { nss[i], nss[j] = nss[j], nss[i] })
		rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
		got := compile(localNode, pods, nss, ps).restore([]string{"KLNP-E-old", "KLNP-I-old", "KLNP-E-old"})
		if !bytes.Equal(got, want) {
			t.Fatalf("output depends on input order:\n%s\nvs\n%s", got, want)
		}
	}
}

func TestRestoreDeletesStaleChains(t *testing.T) {
	t.Parallel()
	pods := testPods()
	web := chainName("I-", &pods[0])
	rs := compile(localNode, pods, testNamespaces(), policies(t, denyIngressDefault))

	// the table as a previous run left it: a chain for a pod now gone
	tbl := newTable()
	previous := "*filter\n:KUBELAB-NETPOL - [0:0]\n:KLNP-I-old - [0:0]\n:" + web + " - [0:0]\n" +
		"-A KUBELAB-NETPOL -d 10.244.1.99/32 -j KLNP-I-old\n-A KUBELAB-NETPOL -d 10.244.1.10/32 -j " + web + "\n" +
		"-A KLNP-I-old -j DROP\n-A " + web + " -j DROP\nCOMMIT\n"
	if err := tbl.restore([]byte(previous)); err != nil {
		t.Fatal(err)
	}
	existing := []string{"INPUT", "FORWARD", "OUTPUT", "DOCKER", mainChain, "KLNP-I-old", web}
	out := rs.restore(existing)
	if err := tbl.restore(out); err != nil {
		t.Fatalf("restore onto the previous table: %v\n%s", err, out)
	}

	var deleted []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if name, ok := strings.CutPrefix(line, "-X "); ok {
			deleted = append(deleted, name)
		}
	}
	if !slices.Equal(deleted, []string{"KLNP-I-old"}) {
		t.Errorf("deleted %v, want [KLNP-I-old]\n%s", deleted, out)
	}
	if _, ok := tbl.chains["KLNP-I-old"]; ok {
		t.Error("stale chain still in the table")
	}
	if _, ok := tbl.chains[mainChain]; !ok {
		t.Error("main chain gone")
	}
	allowed, err := tbl.allows(packet{src: ip("10.244.2.10"), dst: ip("10.244.1.99"), proto: "tcp", port: 80})
	if err != nil || !allowed {
		t.Errorf("traffic to the gone pod: allowed %v, err %v", allowed, err)
	}
	// even with no policy left, the main chain is flushed but never deleted
	empty := ruleset{}.restore([]string{mainChain, web})
	if strings.Contains(string(empty), "-X "+mainChain) || !strings.Contains(string(empty), "-X "+web+"\n") {
		t.Errorf("empty ruleset output:\n%s", empty)
	}
}

func TestIptablesRestoreAccepts(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("iptables-restore")
	if err != nil {
		t.Skip("iptables-restore is not installed: cannot check the output against real iptables")
	}
	if os.Geteuid() != 0 {
		t.Skip("iptables-restore --test needs root")
	}
	out := compile(localNode, testPods(), testNamespaces(), policies(t, richPolicies)).restore([]string{"KLNP-I-stale0000"})
	// --test parses and checks the input without changing the table.
	cmd := exec.Command(bin, "--test", "--noflush")
	cmd.Stdin = bytes.NewReader(out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables-restore --test --noflush: %v: %s\ninput:\n%s", err, msg, out)
	}
}
