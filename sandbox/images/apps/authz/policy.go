package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/url"
	pathpkg "path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// refusal is a request the plugin does not let through; its text is
// what the learner's docker client prints after "authorization denied by
// plugin kubelab-authz: ".
type refusal struct {
	what string // what was refused, as the learner asked for it
	why  string // why, in a few words
}

func (r refusal) Error() string {
	return "kubelab: " + r.what + " is refused: " + r.why
}

// Reasons shared by several refusals.
const (
	whyRoot       = "gives root on the host"
	whyHidden     = "kubelab could not see its settings (send them as application/json under 1 MiB)"
	whyOldAPI     = "API versions before 1.24 change a container's host settings when it starts; use a current docker client"
	whyPlugin     = "a Docker plugin runs with full privileges on the host"
	whySwarm      = "swarm mode is not part of this course"
	whyUnreadable = "kubelab could not read its settings"
)

// defaultCaps is Docker's default capability set: adding one of these is
// a no-op and is allowed, adding anything else is refused.
var defaultCaps = []string{
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
	"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
}

// versionPrefix is the optional /v1.xx that starts an Engine API path,
// as dockerd's router matches it (/v{version:[0-9.]+}).
var versionPrefix = regexp.MustCompile(`^/v([0-9.]+)(/.*)$`)

// volumeName is what dockerd accepts as a named volume; any other source
// of a bind spec is a host path.
var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// decide returns nil when the Engine API request may go on, or the
// refusal. It fails closed: a body it needs but cannot see or read is a
// refusal.
func decide(method, uri string, body []byte) error {
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return refusal{"a request to " + uri, "kubelab could not read its address"}
	}
	version, path := "", strings.ToLower(pathpkg.Clean("/"+u.Path))
	if m := versionPrefix.FindStringSubmatch(path); m != nil {
		version, path = m[1], m[2]
	}
	seg := strings.Split(strings.Trim(path, "/"), "/")
	readOnly := method == "GET" || method == "HEAD"
	switch {
	case match(seg, "containers", "create"):
		return checkCreate(body)
	case match(seg, "containers", "*", "exec"):
		return checkExec(body)
	case match(seg, "containers", "*", "start"):
		return checkStart(version, body)
	case match(seg, "containers", "*", "update"):
		return checkUpdate(body)
	case match(seg, "volumes", "create"):
		return checkVolumeCreate(body)
	case match(seg, "networks", "host", "connect"):
		return refusal{"connecting a container to the host network", "sharing the host's namespaces escapes the container"}
	case match(seg, "build"):
		return checkBuild(u.Query())
	case match(seg, "plugins", "privileges"), // the first step of docker plugin install
		len(seg) > 0 && seg[0] == "plugins" && !readOnly && method != "DELETE":
		return refusal{"installing, enabling or configuring a Docker plugin", whyPlugin}
	case len(seg) > 0 && seg[0] == "swarm" && !readOnly:
		return refusal{"swarm init/join/update", whySwarm}
	case match(seg, "services", "create") || match(seg, "services", "*", "update"):
		return refusal{"creating or updating a swarm service", whySwarm}
	}
	return nil
}

// match reports whether the path segments are pattern, "*" matching any
// one segment.
func match(seg []string, pattern ...string) bool {
	if len(seg) != len(pattern) {
		return false
	}
	for i, p := range pattern {
		if p != "*" && p != seg[i] {
			return false
		}
	}
	return true
}

// strSlice is Docker's strslice.StrSlice: a JSON string or array of strings.
type strSlice []string

// UnmarshalJSON accepts "X" as well as ["X", "Y"].
func (s *strSlice) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = strSlice{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// resources are the HostConfig.Resources fields that matter here; they
// come in container create, and alone in container update.
type resources struct {
	CgroupParent      string            `json:"CgroupParent"`
	Devices           []json.RawMessage `json:"Devices"`
	DeviceCgroupRules []string          `json:"DeviceCgroupRules"`
	DeviceRequests    []json.RawMessage `json:"DeviceRequests"`
}

// hostConfig holds the HostConfig fields that matter here, with the
// Engine API's names and types.
type hostConfig struct {
	resources
	Privileged    bool              `json:"Privileged"`
	CapAdd        strSlice          `json:"CapAdd"`
	Capabilities  []string          `json:"Capabilities"`
	PidMode       string            `json:"PidMode"`
	NetworkMode   string            `json:"NetworkMode"`
	IpcMode       string            `json:"IpcMode"`
	UTSMode       string            `json:"UTSMode"`
	UsernsMode    string            `json:"UsernsMode"`
	CgroupnsMode  string            `json:"CgroupnsMode"`
	Binds         []string          `json:"Binds"`
	Mounts        []mountSpec       `json:"Mounts"`
	SecurityOpt   []string          `json:"SecurityOpt"`
	Sysctls       map[string]string `json:"Sysctls"`
	Runtime       string            `json:"Runtime"`
	MaskedPaths   []string          `json:"MaskedPaths"`
	ReadonlyPaths []string          `json:"ReadonlyPaths"`
}

// mountSpec is one entry of HostConfig.Mounts (--mount).
type mountSpec struct {
	Type          string `json:"Type"`
	Source        string `json:"Source"`
	VolumeOptions *struct {
		DriverConfig *struct {
			Options map[string]string `json:"Options"`
		} `json:"DriverConfig"`
	} `json:"VolumeOptions"`
}

// createBody is a container create request. dockerd still reads host
// settings at the top level when HostConfig is absent (a deprecated
// form), so both places are checked.
type createBody struct {
	hostConfig
	HostConfig       *hostConfig `json:"HostConfig"`
	NetworkingConfig *struct {
		EndpointsConfig map[string]json.RawMessage `json:"EndpointsConfig"`
	} `json:"NetworkingConfig"`
}

// decodeBody reads a JSON body into v; an empty body is a refusal of
// what, since dockerd may have a body the plugin was not shown.
func decodeBody(what string, body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return refusal{what, whyHidden}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return refusal{what, whyUnreadable + " (" + err.Error() + ")"}
	}
	return nil
}

// checkCreate vets POST /containers/create.
func checkCreate(body []byte) error {
	var c createBody
	if err := decodeBody("this container", body, &c); err != nil {
		return err
	}
	if err := checkHost(c.hostConfig); err != nil {
		return err
	}
	if c.HostConfig != nil {
		if err := checkHost(*c.HostConfig); err != nil {
			return err
		}
	}
	if c.NetworkingConfig != nil {
		for name := range c.NetworkingConfig.EndpointsConfig {
			if strings.EqualFold(name, "host") {
				return refusal{"--network host", "sharing the host's namespaces escapes the container"}
			}
		}
	}
	return nil
}

// checkHost vets a container's host settings, in the order a learner
// would most likely meet them.
func checkHost(h hostConfig) error {
	if h.Privileged {
		return refusal{"--privileged", "a privileged container is root on the host"}
	}
	for _, check := range []func(hostConfig) error{checkCaps, checkNamespaces, checkMounts, checkSecurityOpts, checkOther} {
		if err := check(h); err != nil {
			return err
		}
	}
	return checkResources(h.resources)
}

// checkCaps refuses capabilities beyond Docker's default set.
func checkCaps(h hostConfig) error {
	for _, c := range append(slices.Clone([]string(h.CapAdd)), h.Capabilities...) {
		name := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
		if name == "ALL" {
			return refusal{"--cap-add ALL", "all capabilities make a container as strong as --privileged, which is root on the host"}
		}
		if !slices.Contains(defaultCaps, name) {
			return refusal{"--cap-add " + c, "only Docker's default capabilities are allowed (" + name + " is not one of them)"}
		}
	}
	return nil
}

// checkNamespaces refuses sharing the engine's (the host's) namespaces.
func checkNamespaces(h hostConfig) error {
	modes := []struct{ flag, value string }{
		{"--pid", h.PidMode}, {"--network", h.NetworkMode}, {"--ipc", h.IpcMode},
		{"--uts", h.UTSMode}, {"--userns", h.UsernsMode}, {"--cgroupns", h.CgroupnsMode},
	}
	for _, m := range modes {
		if strings.EqualFold(strings.TrimSpace(m.value), "host") {
			return refusal{m.flag + " host", "sharing the host's namespaces escapes the container"}
		}
	}
	return nil
}

// checkMounts refuses host paths: bind mounts, and volumes the local
// driver would make from a host path.
func checkMounts(h hostConfig) error {
	for _, b := range h.Binds {
		parts := strings.Split(b, ":")
		if len(parts) >= 2 && !volumeName.MatchString(parts[0]) {
			return refusal{"-v " + b, "a host path mounted in a container " + whyRoot + "; use a named volume (-v name:" + parts[1] + ")"}
		}
	}
	for _, m := range h.Mounts {
		switch strings.ToLower(m.Type) {
		case "volume":
			if strings.Contains(m.Source, "/") {
				return refusal{"--mount type=volume,src=" + m.Source, "a volume's source must be a volume name, not a path"}
			}
			if m.VolumeOptions != nil && m.VolumeOptions.DriverConfig != nil {
				if err := checkVolumeOpts("--mount type=volume with volume-opt", m.VolumeOptions.DriverConfig.Options); err != nil {
					return err
				}
			}
		case "tmpfs":
		default:
			return refusal{"--mount type=" + m.Type, "a host path mounted in a container " + whyRoot + "; use type=volume or type=tmpfs"}
		}
	}
	return nil
}

// checkVolumeOpts refuses local driver options that mount a host path
// or device (type=none o=bind device=/path, or a block device).
func checkVolumeOpts(what string, opts map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		v := opts[k]
		key, val := strings.ToLower(strings.TrimSpace(k)), strings.ToLower(strings.TrimSpace(v))
		bad := false
		switch key {
		case "type":
			bad = val == "none" || val == "bind" || val == "rbind"
		case "o":
			for _, o := range strings.Split(val, ",") {
				bad = bad || o == "bind" || o == "rbind"
			}
		case "device":
			bad = strings.HasPrefix(val, "/")
		}
		if bad {
			return refusal{what + " " + k + "=" + v, "a volume made from a host path or device " + whyRoot}
		}
	}
	return nil
}

// checkSecurityOpts refuses turning off the confinement Docker adds:
// seccomp (only the default profile), AppArmor, SELinux labels, masked
// /proc and /sys paths.
func checkSecurityOpts(h hostConfig) error {
	for _, opt := range h.SecurityOpt {
		key, val := opt, ""
		if k, v, ok := strings.Cut(opt, "="); ok {
			key, val = k, v
		} else if k, v, ok := strings.Cut(opt, ":"); ok {
			key, val = k, v
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.ToLower(strings.TrimSpace(val))
		shown := opt
		if len(shown) > 40 {
			shown = shown[:40] + "..."
		}
		switch {
		case key == "seccomp" && val == "unconfined":
			return refusal{"--security-opt " + shown, "seccomp keeps the kernel's riskiest system calls away from containers"}
		case key == "seccomp":
			return refusal{"--security-opt " + shown, "only Docker's default seccomp profile is allowed"}
		case key == "apparmor" && val == "unconfined":
			return refusal{"--security-opt " + shown, "AppArmor confinement may not be turned off"}
		case key == "disable" && val == "", key == "label" && (val == "disable" || strings.HasPrefix(val, "type:")):
			return refusal{"--security-opt " + shown, "SELinux confinement may not be turned off"}
		case key == "systempaths":
			return refusal{"--security-opt " + shown, "unmasking /proc and /sys exposes the host kernel's settings"}
		}
	}
	if h.MaskedPaths != nil || h.ReadonlyPaths != nil {
		return refusal{"--security-opt systempaths=unconfined", "unmasking /proc and /sys exposes the host kernel's settings"}
	}
	return nil
}

// checkOther refuses sysctls and other runtimes.
func checkOther(h hostConfig) error {
	if len(h.Sysctls) > 0 {
		keys := slices.Sorted(maps.Keys(h.Sysctls))
		return refusal{"--sysctl " + keys[0] + "=" + h.Sysctls[keys[0]], "kernel settings are shared with the host here"}
	}
	if r := strings.TrimSpace(h.Runtime); r != "" && r != "runc" {
		return refusal{"--runtime " + r, "only the default runtime (runc) is allowed"}
	}
	return nil
}

// checkResources refuses devices and a cgroup parent of one's choosing.
func checkResources(r resources) error {
	switch {
	case len(r.Devices) > 0:
		return refusal{"--device", "a host device in a container " + whyRoot}
	case len(r.DeviceRequests) > 0:
		return refusal{"--gpus (device requests)", "a host device in a container " + whyRoot}
	case len(r.DeviceCgroupRules) > 0:
		return refusal{"--device-cgroup-rule " + r.DeviceCgroupRules[0], "a host device in a container " + whyRoot}
	case r.CgroupParent != "":
		return refusal{"--cgroup-parent " + r.CgroupParent, "containers stay inside your sandbox's resource limits"}
	}
	return nil
}

// checkExec vets POST /containers/{id}/exec.
func checkExec(body []byte) error {
	var e struct {
		Privileged bool `json:"Privileged"`
	}
	if err := decodeBody("this exec", body, &e); err != nil {
		return err
	}
	if e.Privileged {
		return refusal{"docker exec --privileged", "a privileged process is root on the host"}
	}
	return nil
}

// checkStart vets POST /containers/{id}/start: before API 1.24 its body
// could carry host settings; later dockerd refuses a body itself.
func checkStart(version string, body []byte) error {
	if version != "" && versionBefore(version, 1, 24) {
		return refusal{"starting a container with API version " + version, whyOldAPI}
	}
	if len(bytes.TrimSpace(body)) == 0 || string(bytes.TrimSpace(body)) == "null" {
		return nil
	}
	var h hostConfig
	if err := json.Unmarshal(body, &h); err != nil {
		return refusal{"this container start", whyUnreadable}
	}
	return checkHost(h)
}

// versionBefore reports whether the API version v ("1.23") is before
// major.minor; one it cannot read counts as before.
func versionBefore(v string, major, minor int) bool {
	maj, min, _ := strings.Cut(v, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil {
		return true
	}
	return a < major || (a == major && b < minor)
}

// checkUpdate vets POST /containers/{id}/update (docker update).
func checkUpdate(body []byte) error {
	var r resources
	if err := decodeBody("this container update", body, &r); err != nil {
		return err
	}
	return checkResources(r)
}

// checkVolumeCreate vets POST /volumes/create (docker volume create).
func checkVolumeCreate(body []byte) error {
	var v struct {
		DriverOpts map[string]string `json:"DriverOpts"`
	}
	if err := decodeBody("this volume", body, &v); err != nil {
		return err
	}
	return checkVolumeOpts("docker volume create --opt", v.DriverOpts)
}

// checkBuild vets POST /build: its settings are query parameters.
func checkBuild(q url.Values) error {
	for k, vs := range q {
		for _, v := range vs {
			switch strings.ToLower(k) {
			case "networkmode":
				if strings.EqualFold(strings.TrimSpace(v), "host") {
					return refusal{"docker build --network host", "build steps on the host's network stack escape the container"}
				}
			case "cgroupparent":
				if v != "" {
					return refusal{"docker build --cgroup-parent " + v, "containers stay inside your sandbox's resource limits"}
				}
			}
		}
	}
	return nil
}
