package kind

import (
	"slices"
	"strings"
	"testing"

	"kubelab/sandbox"
)

func TestLimitsFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		l    Limits
		want []string
	}{
		{"all", Limits{Memory: 512 << 20, CPUs: 1.5, PIDs: 300}, []string{"--memory=536870912", "--memory-swap=536870912", "--cpus=1.5", "--pids-limit=300"}},
		{"whole cpus", Limits{Memory: 1 << 30, CPUs: 2, PIDs: 10}, []string{"--memory=1073741824", "--memory-swap=1073741824", "--cpus=2", "--pids-limit=10"}},
		{"none", Limits{Memory: -1, CPUs: -1, PIDs: -1}, nil},
		{"pids only", Limits{PIDs: 64}, []string{"--pids-limit=64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.l.flags(); !slices.Equal(got, tt.want) {
				t.Errorf("flags() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLimitsOrDefault(t *testing.T) {
	t.Parallel()
	def := Limits{Memory: 100, CPUs: 4, PIDs: 50}
	tests := []struct {
		name    string
		l       Limits
		maxCPUs int
		want    Limits
	}{
		{"zero takes defaults, cpus capped", Limits{}, 2, Limits{Memory: 100, CPUs: 2, PIDs: 50}},
		{"set fields kept", Limits{Memory: 7, CPUs: 0.5, PIDs: 9}, 2, Limits{Memory: 7, CPUs: 0.5, PIDs: 9}},
		{"negative kept: no limit", Limits{Memory: -1, CPUs: -1, PIDs: -1}, 2, Limits{Memory: -1, CPUs: -1, PIDs: -1}},
		{"enough cpus", Limits{}, 8, Limits{Memory: 100, CPUs: 4, PIDs: 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.l.orDefault(def, tt.maxCPUs); got != tt.want {
				t.Errorf("orDefault = %+v, want %+v", got, tt.want)
			}
		})
	}
}

var testIdentity = identity{id: "kl-3f2a", owner: "ada", kind: sandbox.KindKubernetes}

func TestWorkstationArgs(t *testing.T) {
	t.Parallel()
	got := workstationArgs(testIdentity, "kubelab/workstation:v1.34.4", Limits{Memory: 512 << 20, CPUs: 1, PIDs: 512})
	want := []string{
		"run", "--detach", "--name=kl-3f2a-ws", "--hostname=kubelab", "--network=kl-3f2a",
		"--cap-drop=ALL", "--security-opt=no-new-privileges", "--init", "--restart=unless-stopped",
		"--env=DOCKER_HOST=tcp://docker:2375", "--env=KUBECONFIG=/home/learner/.kube/config",
		"--label", "kubelab.io/owner=ada", "--label", "kubelab.io/sandbox=kl-3f2a",
		"--label", "kubelab.io/kind=kubernetes", "--label", "kubelab.io/role=workstation",
		"--memory=536870912", "--memory-swap=536870912", "--cpus=1", "--pids-limit=512",
		"kubelab/workstation:v1.34.4", "sleep", "infinity",
	}
	if !slices.Equal(got, want) {
		t.Errorf("workstationArgs =\n%q\nwant\n%q", got, want)
	}
	// What must never be there: privilege, host mounts, the host's socket,
	// published ports, added capabilities, another user.
	for _, a := range got {
		for _, bad := range []string{"--privileged", "--volume", "-v", "--mount", "docker.sock", "--publish", "-p", "--cap-add", "--user", "--pid", "--ipc"} {
			if a == bad || strings.HasPrefix(a, bad+"=") || strings.Contains(a, "docker.sock") {
				t.Errorf("workstationArgs has %q", a)
			}
		}
	}
}

func TestEngineArgs(t *testing.T) {
	t.Parallel()
	id := identity{id: "kl-3f2a", owner: "ada", kind: sandbox.KindDocker}
	got := engineArgs(id, "kubelab/engine:20.10", Limits{Memory: 2 << 30, CPUs: 2, PIDs: 2048})
	want := []string{
		"run", "--detach", "--name=kl-3f2a-engine", "--hostname=docker", "--network=kl-3f2a",
		"--network-alias=docker", "--privileged", "--volume=kl-3f2a-docker:/var/lib/docker",
		"--restart=unless-stopped",
		"--label", "kubelab.io/owner=ada", "--label", "kubelab.io/sandbox=kl-3f2a",
		"--label", "kubelab.io/kind=docker", "--label", "kubelab.io/role=engine",
		"--memory=2147483648", "--memory-swap=2147483648", "--cpus=2", "--pids-limit=2048",
		"kubelab/engine:20.10",
		"--host=unix:///var/run/docker.sock", "--host=tcp://0.0.0.0:2375", "--tls=false",
	}
	if !slices.Equal(got, want) {
		t.Errorf("engineArgs =\n%q\nwant\n%q", got, want)
	}
	for _, a := range got {
		if a == "--publish" || strings.HasPrefix(a, "--publish=") || a == "-p" {
			t.Errorf("engineArgs publishes a port: %q", a)
		}
	}
}

func TestNetworkVolumeUpdateArgs(t *testing.T) {
	t.Parallel()
	id := identity{id: "kl-9", owner: "", kind: sandbox.KindShell}
	labels := []string{"--label", "kubelab.io/owner=", "--label", "kubelab.io/sandbox=kl-9", "--label", "kubelab.io/kind=shell"}
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"network", networkArgs(id), slices.Concat([]string{"network", "create", "--driver=bridge", "--opt=com.docker.network.bridge.name=" + bridgeName("kl-9")}, labels, []string{"--label", "kubelab.io/role=network", "kl-9"})},
		{"volume", volumeArgs(id), slices.Concat([]string{"volume", "create"}, labels, []string{"--label", "kubelab.io/role=volume", "kl-9-docker"})},
		{"update", updateArgs("kl-9-control-plane", Limits{Memory: 1 << 30, CPUs: 1, PIDs: 100}), []string{"update", "--memory=1073741824", "--memory-swap=1073741824", "--cpus=1", "--pids-limit=100", "kl-9-control-plane"}},
		{"update no limits", updateArgs("n", Limits{Memory: -1, CPUs: -1, PIDs: -1}), []string{"update", "n"}},
	}
	for _, tt := range tests {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s args =\n%q\nwant\n%q", tt.name, tt.got, tt.want)
		}
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		want bool
	}{
		{"kl-3f2a9c", true},
		{"a", true},
		{"kl-" + strings.Repeat("a", 37), true}, // 40
		{"kl-" + strings.Repeat("a", 38), false},
		{"", false},
		{"KL-1", false},
		{"kl_1", false},
		{"-kl", false},
		{"kl-", false},
		{"kl.1", false},
	}
	for _, tt := range tests {
		if got := validID.MatchString(tt.id); got != tt.want {
			t.Errorf("validID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestValidLabelValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v    string
		want bool
	}{
		{"", true},
		{"ada", true},
		{"user-1.a_b", true},
		{"ada@example.com", false},
		{"-ada", false},
		{"ada-", false},
		{strings.Repeat("a", 64), false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := validLabelValue(tt.v); got != tt.want {
			t.Errorf("validLabelValue(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestBridgeName(t *testing.T) {
	a, b := bridgeName("kl-ab12-0001"), bridgeName("kl-ab12-0002")
	if len(a) > 15 || !strings.HasPrefix(a, bridgePrefix) {
		t.Errorf("bridgeName = %q: want at most 15 characters starting %q", a, bridgePrefix)
	}
	if a == b {
		t.Errorf("two sandboxes share the bridge name %q", a)
	}
	if a != bridgeName("kl-ab12-0001") {
		t.Error("bridgeName is not stable")
	}
}

func TestLimitsCapped(t *testing.T) {
	t.Parallel()
	base := Limits{Memory: 2 << 30, CPUs: 2, PIDs: 4096}
	tests := []struct {
		name string
		l    Limits
		cap  sandbox.Resources
		want Limits
	}{
		{"no cap", base, sandbox.Resources{}, base},
		{"lower memory and CPUs", base, sandbox.Resources{Memory: 1 << 30, CPUs: 0.5}, Limits{Memory: 1 << 30, CPUs: 0.5, PIDs: 4096}},
		{"a cap above the limit changes nothing", base, sandbox.Resources{Memory: 4 << 30, CPUs: 4}, base},
		{"a cap where there was no limit", Limits{Memory: -1, CPUs: -1, PIDs: 10}, sandbox.Resources{Memory: 256 << 20, CPUs: 1}, Limits{Memory: 256 << 20, CPUs: 1, PIDs: 10}},
	}
	for _, tt := range tests {
		if got := tt.l.capped(tt.cap); got != tt.want {
			t.Errorf("%s: %+v.capped(%+v) = %+v, want %+v", tt.name, tt.l, tt.cap, got, tt.want)
		}
	}
}
