package kind

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"kubelab/sandbox"
)

func TestParseLabels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"", map[string]string{}},
		{"a=b", map[string]string{"a": "b"}},
		{"a=b,c=", map[string]string{"a": "b", "c": ""}},
		{"kubelab.io/owner=grace,hopper=x,kubelab.io/role=ws", map[string]string{"kubelab.io/owner": "grace", "hopper": "x", "kubelab.io/role": "ws"}},
		{"kubelab.io/owner=a,b,c,kubelab.io/role=ws", map[string]string{"kubelab.io/owner": "a,b,c", "kubelab.io/role": "ws"}},
		{"k=v=w", map[string]string{"k": "v=w"}},
		{",junk,a=1", map[string]string{"a": "1"}},
	}
	for _, tt := range tests {
		if got := parseLabels(tt.in); !maps.Equal(got, tt.want) {
			t.Errorf("parseLabels(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func mustParse(t *testing.T, file string) []object {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := parseObjects(b)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	return objs
}

func TestParseObjects(t *testing.T) {
	t.Parallel()
	ctrs := mustParse(t, "testdata/ps.json")
	if len(ctrs) != 3 {
		t.Fatalf("%d containers, want 3", len(ctrs))
	}
	ws := ctrs[0]
	if ws.Name != "kl-aaa-ws" || ws.State != "running" || ws.Labels[LabelSandbox] != "kl-aaa" || ws.Labels[LabelOwner] != "ada" || ws.Labels[LabelRole] != "workstation" {
		t.Errorf("first container = %+v", ws)
	}
	nets := mustParse(t, "testdata/networks.json")
	if nets[0].Name != "kl-aaa" || nets[0].Labels[LabelKind] != "kubernetes" {
		t.Errorf("first network = %+v", nets[0])
	}
	if _, err := parseObjects([]byte("{\"Names\":\"x\"}\nnot json\n")); err == nil || !strings.HasPrefix(err.Error(), "line 2: ") {
		t.Errorf("parse of a bad line: err = %v, want it to name line 2", err)
	}
	if objs, err := parseObjects(nil); err != nil || len(objs) != 0 {
		t.Errorf("parse of nothing = %v, %v", objs, err)
	}
}

func TestCollect(t *testing.T) {
	t.Parallel()
	ctrs := mustParse(t, "testdata/ps.json")
	nets := mustParse(t, "testdata/networks.json")
	vols := mustParse(t, "testdata/volumes.json")
	nodes := mustParse(t, "testdata/nodes.json")
	show := func(fs []*found) string {
		var b strings.Builder
		for _, f := range fs {
			fmt.Fprintf(&b, "%s owner=%q kind=%v ws=%v engine=%v net=%v vol=%v nodes=%v\n",
				f.id, f.owner, f.kind(), f.workstation, f.engine, f.network, f.volume, f.nodes)
		}
		return b.String()
	}
	got := show(collect(ctrs, nets, vols, nodes, clusterPrefix))
	want := `kl-aaa owner="ada" kind=kubernetes ws=true engine=true net=true vol=true nodes=[kl-aaa-control-plane kl-aaa-worker]
kl-bbb owner="grace" kind=shell ws=true engine=false net=true vol=false nodes=[]
kl-ccc owner="linus" kind=shell ws=false engine=false net=true vol=true nodes=[]
kl-orphan owner="" kind=kubernetes ws=false engine=false net=false vol=false nodes=[kl-orphan-control-plane]
`
	if got != want {
		t.Errorf("collect =\n%s\nwant\n%s", got, want)
	}
	// An owner with "," then "=" in it is ambiguous in docker's rendering:
	// grace,hopper=x reads as owner grace plus a label hopper=x (and the
	// network's labels read the same, so the answer is at least stable).

	// One sandbox: its own cluster is adopted whatever its name.
	one := collect(nil, nil, nil, nodes[:2], "kl-aaa")
	if got := show(one); got != "kl-aaa owner=\"\" kind=kubernetes ws=false engine=false net=false vol=false nodes=[kl-aaa-control-plane kl-aaa-worker]\n" {
		t.Errorf("collect of one cluster = %s", got)
	}
	// Without a prefix to adopt, lone clusters are not sandboxes.
	if got := collect(nil, nil, nil, nodes, ""); len(got) != 0 {
		t.Errorf("collect adopted %s", show(got))
	}
}

func TestFoundKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f     found
		kind  sandbox.Kind
		empty bool
	}{
		{found{}, sandbox.KindShell, true},
		{found{workstation: true}, sandbox.KindShell, false},
		{found{workstation: true, engine: true}, sandbox.KindDocker, false},
		{found{workstation: true, engine: true, nodes: []string{"n"}}, sandbox.KindKubernetes, false},
		{found{volume: true}, sandbox.KindShell, false},
	}
	for _, tt := range tests {
		if k, e := tt.f.kind(), tt.f.empty(); k != tt.kind || e != tt.empty {
			t.Errorf("%+v: kind %v empty %v, want %v %v", tt.f, k, e, tt.kind, tt.empty)
		}
	}
}

func TestParseCtrImages(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/ctr-images.txt")
	if err != nil {
		t.Fatal(err)
	}
	got := parseCtrImages(b)
	if d := got["docker.io/kubelab/hello:v1"]; d != "sha256:1111111111111111111111111111111111111111111111111111111111111111" {
		t.Errorf("digest of hello:v1 = %q", d)
	}
	if _, ok := got["REF"]; ok {
		t.Errorf("the header was read as an image")
	}
	keys := slices.Sorted(maps.Keys(got))
	if len(keys) != 3 {
		t.Errorf("images = %q, want 3", keys)
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"kubelab/hello:v1":             "docker.io/kubelab/hello:v1",
		"debian":                       "docker.io/library/debian:latest",
		"registry.k8s.io/pause:3.10.1": "registry.k8s.io/pause:3.10.1",
		"localhost:5000/app":           "localhost:5000/app:latest",
		"Not A Reference":              "Not A Reference",
	}
	for in, want := range tests {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNetworkIP(t *testing.T) {
	t.Parallel()
	js := []byte(`{"kind":{"IPAddress":"172.18.0.3"},"kl-aaa":{"IPAddress":"172.19.0.2"},"kl-down":{"IPAddress":""}}`)
	if ip, err := networkIP(js, "kl-aaa"); err != nil || ip != "172.19.0.2" {
		t.Errorf("networkIP = %q, %v", ip, err)
	}
	if _, err := networkIP(js, "kl-down"); err == nil || err.Error() != "no address on network kl-down (is the container running?)" {
		t.Errorf("networkIP of a stopped container: %v", err)
	}
	if _, err := networkIP([]byte("null"), "kl-aaa"); err == nil {
		t.Errorf("networkIP of no networks: no error")
	}
}

func TestDockerFailed(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"Error: No such container: kl-x-ws\n":                        true,
		"Error response from daemon: Container abc is not running\n": true,
		"OCI runtime exec failed: exec failed: unable to start":      true,
		"bash: line 1: nope: command not found\n":                    false,
		"": false,
	}
	for in, want := range tests {
		if got := dockerFailed([]byte(in)); got != want {
			t.Errorf("dockerFailed(%q) = %v, want %v", in, got, want)
		}
	}
}
