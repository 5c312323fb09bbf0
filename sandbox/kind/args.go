package kind

import (
	"strconv"

	"kubelab/sandbox"
)

// Labels on everything of a sandbox except its kind nodes.
const (
	LabelOwner   = "kubelab.io/owner"   // the learner the sandbox was made for
	LabelSandbox = "kubelab.io/sandbox" // the sandbox ID
	LabelKind    = "kubelab.io/kind"    // shell, docker or kubernetes: what it was made for
	LabelRole    = "kubelab.io/role"    // network, volume, engine or workstation
	// KindClusterLabel is kind's own label on its node containers, whose
	// value is the cluster name (the sandbox ID). Docker cannot label a
	// container after it was created, so kind nodes are found by it.
	KindClusterLabel = "io.x-k8s.kind.cluster"
)

// Roles, the values of LabelRole.
const (
	roleNetwork     = "network"
	roleVolume      = "volume"
	roleEngine      = "engine"
	roleWorkstation = "workstation"
)

// Inside the workstation.
const (
	learnerUser = "learner"
	learnerHome = "/home/learner"
	kubeconfig  = learnerHome + "/.kube/config"
	// engineHost is the learner's engine as the workstation reaches it:
	// the engine's alias on the sandbox network.
	engineHost  = "tcp://docker:2375"
	engineAlias = "docker"
	enginePort  = "2375"
)

// Names of a sandbox's Docker objects. The network and the kind cluster
// are named by the ID itself; kind names the nodes ID-control-plane,
// ID-worker, ID-worker2...
func networkName(id string) string      { return id }
func volumeName(id string) string       { return id + "-docker" }
func engineName(id string) string       { return id + "-engine" }
func workstationName(id string) string  { return id + "-ws" }
func controlPlaneName(id string) string { return id + "-control-plane" }

// Limits caps one container's resources. A zero field takes the default
// of its container; a negative one sets no limit.
type Limits struct {
	Memory int64   // bytes of memory; swap is not allowed on top of it
	CPUs   float64 // cores, as docker's --cpus
	PIDs   int64   // processes and threads
}

// Default limits, per container (see Options). The engine's and each
// node's memory are sized from the host's (hostMem bytes): an eighth of it,
// between 1 and 2 GiB.
func defaultWorkstationLimits() Limits { return Limits{Memory: 512 << 20, CPUs: 1, PIDs: 512} }
func defaultEngineLimits(hostMem int64) Limits {
	return Limits{Memory: sizedMemory(hostMem, 1<<30, 2<<30), CPUs: 2, PIDs: 2048}
}
func defaultNodeLimits(hostMem int64) Limits {
	return Limits{Memory: sizedMemory(hostMem, 1<<30, 2<<30), CPUs: 2, PIDs: 4096}
}

// orDefault fills l's zero fields from def and caps CPUs at maxCPUs (docker
// refuses more CPUs than the machine has).
func (l Limits) orDefault(def Limits, maxCPUs int) Limits {
	if l.Memory == 0 {
		l.Memory = def.Memory
	}
	if l.CPUs == 0 {
		l.CPUs = def.CPUs
	}
	if l.PIDs == 0 {
		l.PIDs = def.PIDs
	}
	if maxCPUs > 0 && l.CPUs > float64(maxCPUs) {
		l.CPUs = float64(maxCPUs)
	}
	return l
}

// capped lowers l's memory and CPUs to c's where c sets less (or l none).
func (l Limits) capped(c sandbox.Resources) Limits {
	if c.Memory > 0 && (l.Memory <= 0 || c.Memory < l.Memory) {
		l.Memory = c.Memory
	}
	if c.CPUs > 0 && (l.CPUs <= 0 || c.CPUs < l.CPUs) {
		l.CPUs = c.CPUs
	}
	return l
}

// flags are the docker run and docker update flags that set l.
func (l Limits) flags() []string {
	var f []string
	if l.Memory > 0 {
		m := strconv.FormatInt(l.Memory, 10)
		f = append(f, "--memory="+m, "--memory-swap="+m)
	}
	if l.CPUs > 0 {
		f = append(f, "--cpus="+strconv.FormatFloat(l.CPUs, 'f', -1, 64))
	}
	if l.PIDs > 0 {
		f = append(f, "--pids-limit="+strconv.FormatInt(l.PIDs, 10))
	}
	return f
}

// labelFlags are the --label flags of one of a sandbox's objects.
func labelFlags(id, owner string, kind sandbox.Kind, role string) []string {
	return []string{
		"--label", LabelOwner + "=" + owner,
		"--label", LabelSandbox + "=" + id,
		"--label", LabelKind + "=" + kind.String(),
		"--label", LabelRole + "=" + role,
	}
}

// identity is what names and labels one sandbox's objects.
type identity struct {
	id    string
	owner string
	kind  sandbox.Kind      // what the sandbox was made (or grown) for
	cap   sandbox.Resources // Spec.Cap: a ceiling on every container's limits
}

// networkArgs creates the sandbox's own bridge network.
func networkArgs(s identity) []string {
	args := []string{"network", "create", "--driver=bridge", "--opt=com.docker.network.bridge.name=" + bridgeName(s.id)}
	args = append(args, labelFlags(s.id, s.owner, s.kind, roleNetwork)...)
	return append(args, networkName(s.id))
}

// volumeArgs creates the volume that holds the engine's /var/lib/docker.
func volumeArgs(s identity) []string {
	args := []string{"volume", "create"}
	args = append(args, labelFlags(s.id, s.owner, s.kind, roleVolume)...)
	return append(args, volumeName(s.id))
}

// engineArgs runs the learner's Docker engine: privileged (Docker in
// Docker needs it), its state on the sandbox's volume, listening on
// tcp://0.0.0.0:2375 on the sandbox network only (nothing is published on
// the host), reachable as "docker" there.
func engineArgs(s identity, image string, l Limits) []string {
	args := []string{
		"run", "--detach",
		"--name=" + engineName(s.id),
		"--hostname=docker",
		"--network=" + networkName(s.id),
		"--network-alias=" + engineAlias,
		"--privileged",
		"--volume=" + volumeName(s.id) + ":/var/lib/docker",
		"--restart=unless-stopped",
	}
	args = append(args, labelFlags(s.id, s.owner, s.kind, roleEngine)...)
	args = append(args, l.flags()...)
	return append(args, image,
		"--host=unix:///var/run/docker.sock", "--host=tcp://0.0.0.0:"+enginePort, "--tls=false")
}

// workstationArgs runs the learner's workstation: unprivileged (every
// capability dropped: a login shell of an ordinary user needs none), no
// privilege gain through setuid binaries, no host mounts and no Docker
// socket, on the sandbox network only, as the image's own unprivileged
// user. docker-init (tini) is its PID 1 and reaps what the learner's
// shells leave behind; it keeps `sleep infinity` running.
func workstationArgs(s identity, image string, l Limits) []string {
	args := []string{
		"run", "--detach",
		"--name=" + workstationName(s.id),
		"--hostname=kubelab",
		"--network=" + networkName(s.id),
		"--cap-drop=ALL",
		"--security-opt=no-new-privileges",
		"--init",
		"--restart=unless-stopped",
		"--env=DOCKER_HOST=" + engineHost,
		"--env=KUBECONFIG=" + kubeconfig,
	}
	args = append(args, labelFlags(s.id, s.owner, s.kind, roleWorkstation)...)
	args = append(args, l.flags()...)
	return append(args, image, "sleep", "infinity")
}

// updateArgs sets a kind node's limits: kind sets none.
func updateArgs(node string, l Limits) []string {
	return append(append([]string{"update"}, l.flags()...), node)
}
