package checker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"go.yaml.in/yaml/v3"
)

// DockerSpec checks the sandbox's Docker engine: one container (by name) or
// the containers with a label, an image, a volume or a network. Exactly one
// of Container, Label, Image, Volume and Network is set.
type DockerSpec struct {
	Container string // container name
	Label     string // "key=value" or "key": every container with it
	// Conditions on containers.
	State    string         // created, running, paused, restarting, removing, exited, dead
	ExitCode *int           // expected exit code of a stopped container
	Ports    []PortSpec     // published ports
	Mounts   []string       // "/dest", "volume" or "source:/dest"
	Env      []string       // "KEY=VALUE" or "KEY"
	Log      *regexp.Regexp // a line of its logs (stdout and stderr) matches
	Image    string         // "name:tag"
	Volume   string
	Network  string
	Absent   bool // pass when the object is gone
}

// PortSpec is one published port: "8080:80/tcp" is host port 8080 to
// container port 80/tcp; "80" is container port 80/tcp published anywhere.
type PortSpec struct {
	Text          string // as written
	HostIP        string // optional
	HostPort      string // "" for any
	ContainerPort string
	Proto         string // tcp, udp or sctp
}

var containerStates = []string{"created", "running", "paused", "restarting", "removing", "exited", "dead"}

func compileDocker(n *yaml.Node) (*DockerSpec, error) {
	f, err := mapping(n, "docker", "container", "label", "state", "exitCode", "ports", "mounts", "env", "log",
		"image", "volume", "network", "absent")
	if err != nil {
		return nil, err
	}
	d := &DockerSpec{}
	var targets []string
	for _, k := range []string{"container", "label", "image", "volume", "network"} {
		v, err := f.str(k)
		if err != nil {
			return nil, err
		}
		if v == "" {
			continue
		}
		targets = append(targets, k)
		switch k {
		case "container":
			d.Container = strings.TrimPrefix(v, "/")
		case "label":
			d.Label = v
		case "image":
			d.Image = v
			if _, err := reference.ParseDockerRef(v); err != nil {
				return nil, errAt(f.get(k), "docker.image: invalid image reference %q", v)
			}
		case "volume":
			d.Volume = v
		case "network":
			d.Network = v
		}
	}
	switch len(targets) {
	case 0:
		return nil, errAt(f.node, "docker: one of container, label, image, volume, network is required")
	case 1:
	default:
		return nil, errAt(f.key(targets[1]), "docker: use only one of container, label, image, volume, network (found %s)", strings.Join(targets, " and "))
	}
	if d.Absent, _, err = f.boolean("absent"); err != nil {
		return nil, err
	}
	isContainer := d.Container != "" || d.Label != ""
	for _, k := range []string{"state", "exitCode", "ports", "mounts", "env", "log"} {
		if !f.has(k) {
			continue
		}
		if !isContainer {
			return nil, errAt(f.key(k), "docker.%s applies to containers: give docker.container or docker.label", k)
		}
		if d.Absent {
			return nil, errAt(f.key(k), "docker.absent cannot be combined with docker.%s", k)
		}
	}
	if d.State, err = f.str("state"); err != nil {
		return nil, err
	}
	if d.State != "" && !slices.Contains(containerStates, d.State) {
		return nil, errAt(f.get("state"), "docker.state must be one of %s (got %q)", strings.Join(containerStates, ", "), d.State)
	}
	if code, ok, err := f.integer("exitCode"); err != nil {
		return nil, err
	} else if ok {
		if d.State != "" && d.State != "exited" && d.State != "dead" {
			return nil, errAt(f.key("exitCode"), "docker.exitCode needs a stopped container, not state %s", d.State)
		}
		d.ExitCode = &code
	}
	ports, err := f.strings("ports")
	if err != nil {
		return nil, err
	}
	for i, p := range ports {
		ps, err := parsePort(p)
		if err != nil {
			return nil, errAt(f.get("ports"), "docker.ports[%d]: %v", i, err)
		}
		d.Ports = append(d.Ports, ps)
	}
	if d.Mounts, err = f.strings("mounts"); err != nil {
		return nil, err
	}
	for i, m := range d.Mounts {
		if strings.TrimSpace(m) == "" {
			return nil, errAt(f.get("mounts"), "docker.mounts[%d] is empty", i)
		}
	}
	if d.Env, err = f.strings("env"); err != nil {
		return nil, err
	}
	for i, e := range d.Env {
		if k, _, _ := strings.Cut(e, "="); k == "" {
			return nil, errAt(f.get("env"), "docker.env[%d]: want KEY=VALUE or KEY, got %q", i, e)
		}
	}
	if d.Log, err = f.regexp("log"); err != nil {
		return nil, err
	}
	return d, nil
}

// parsePort reads [[IP:]HOST:]CONTAINER[/PROTO].
func parsePort(s string) (PortSpec, error) {
	p := PortSpec{Text: s, Proto: "tcp"}
	rest := strings.TrimSpace(s)
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		p.Proto = strings.ToLower(rest[i+1:])
		rest = rest[:i]
		if p.Proto != "tcp" && p.Proto != "udp" && p.Proto != "sctp" {
			return p, fmt.Errorf("want HOST:CONTAINER[/PROTO] like 8080:80/tcp, got %q", s)
		}
	}
	parts := strings.Split(rest, ":")
	switch len(parts) {
	case 1:
		p.ContainerPort = parts[0]
	case 2:
		p.HostPort, p.ContainerPort = parts[0], parts[1]
	case 3:
		p.HostIP, p.HostPort, p.ContainerPort = parts[0], parts[1], parts[2]
	default:
		return p, fmt.Errorf("want HOST:CONTAINER[/PROTO] like 8080:80/tcp, got %q", s)
	}
	valid := func(n string) bool {
		v, err := strconv.Atoi(n)
		return err == nil && v >= 1 && v <= 65535
	}
	if !valid(p.ContainerPort) || (p.HostPort != "" && !valid(p.HostPort)) {
		return p, fmt.Errorf("want HOST:CONTAINER[/PROTO] like 8080:80/tcp, got %q", s)
	}
	return p, nil
}

// containerPort is "80/tcp".
func (p PortSpec) containerPort() string { return p.ContainerPort + "/" + p.Proto }

// dockerClient is a read-only Engine API client for one evaluation.
type dockerClient struct {
	api *client.Client
}

func (d *dockerClient) close() { _ = d.api.Close() }

// refuseWrites is a request hook that lets only GET and HEAD through.
func refuseWrites(req *http.Request) error {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return fmt.Errorf("checker is read-only: refused %s %s", req.Method, req.URL.Path)
	}
	return nil
}

func newDockerClient(host string) (*dockerClient, error) {
	c, err := client.New(client.WithHost(host), client.WithHTTPRequestHook(refuseWrites))
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", host, err)
	}
	return &dockerClient{api: c}, nil
}

func (s *session) dockerClient(ctx context.Context) (*client.Client, outcome, bool) {
	if s.docker != nil {
		return s.docker.api, outcome{}, true
	}
	host, err := s.t.DockerHost(ctx)
	if err != nil {
		return nil, unavailable(err, "a Docker engine"), false
	}
	if host == "" {
		return nil, unavailable(ErrUnavailable, "a Docker engine"), false
	}
	dc, err := newDockerClient(host)
	if err != nil {
		o := broken(err, "could not connect to the Docker engine")
		o.final = true
		return nil, o, false
	}
	s.docker = dc
	return dc.api, outcome{}, true
}

// dockerErr turns an Engine API error into words.
func dockerErr(err error) outcome {
	return broken(err, "could not reach the Docker engine; it may still be starting")
}

func (s *session) dockerCheck(ctx context.Context, d *DockerSpec) outcome {
	api, o, ok := s.dockerClient(ctx)
	if !ok {
		return o
	}
	switch {
	case d.Image != "":
		return dockerImage(ctx, api, d)
	case d.Volume != "":
		res, err := api.VolumeList(ctx, client.VolumeListOptions{})
		if err != nil {
			return dockerErr(err)
		}
		var all []string
		for _, v := range res.Items {
			all = append(all, v.Name)
		}
		return presence("volume", d.Volume, all, d.Absent)
	case d.Network != "":
		res, err := api.NetworkList(ctx, client.NetworkListOptions{})
		if err != nil {
			return dockerErr(err)
		}
		var all []string
		for _, n := range res.Items {
			all = append(all, n.Name)
		}
		return presence("network", d.Network, all, d.Absent)
	}
	return dockerContainers(ctx, api, d)
}

// presence checks a named volume or network.
func presence(kind, name string, all []string, absent bool) outcome {
	exists := slices.Contains(all, name)
	switch {
	case exists && absent:
		return fail("%s %s still exists, expected it removed", kind, name)
	case exists:
		return pass("%s %s exists", kind, name)
	case absent:
		return pass("no %s named %s", kind, name)
	}
	return fail("no %s named %s%s", kind, name, foundList(all))
}

func dockerImage(ctx context.Context, api *client.Client, d *DockerSpec) outcome {
	res, err := api.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return dockerErr(err)
	}
	want := normalImage(d.Image)
	wantRepo := repoOf(d.Image)
	var sameRepo, all []string
	exists := false
	for _, img := range res.Items {
		for _, tag := range img.RepoTags {
			if tag == "<none>:<none>" {
				continue
			}
			if normalImage(tag) == want {
				exists = true
			}
			if repoOf(tag) == wantRepo {
				sameRepo = append(sameRepo, tag)
			}
			all = append(all, tag)
		}
	}
	switch {
	case exists && d.Absent:
		return fail("image %s is still present, expected it removed", d.Image)
	case exists:
		return pass("image %s is present", d.Image)
	case d.Absent:
		return pass("image %s is not present", d.Image)
	case len(sameRepo) > 0:
		return fail("image %s not found%s", d.Image, foundList(sameRepo))
	}
	return fail("image %s not found%s", d.Image, foundList(all))
}

// repoOf is the normalized repository of an image reference.
func repoOf(s string) string {
	ref, err := reference.ParseDockerRef(s)
	if err != nil {
		return s
	}
	return ref.Name()
}

func dockerContainers(ctx context.Context, api *client.Client, d *DockerSpec) outcome {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return dockerErr(err)
	}
	var all []string
	type match struct{ id, name string }
	var matched []match
	labelKey, labelVal, hasVal := strings.Cut(d.Label, "=")
	for _, c := range res.Items {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		all = append(all, name)
		switch {
		case d.Container != "":
			for _, n := range c.Names {
				if strings.TrimPrefix(n, "/") == d.Container {
					matched = append(matched, match{c.ID, d.Container})
				}
			}
		case d.Label != "":
			if v, ok := c.Labels[labelKey]; ok && (!hasVal || v == labelVal) {
				matched = append(matched, match{c.ID, name})
			}
		}
	}
	sort.Slice(matched, func(i, j int) bool { return matched[i].name < matched[j].name })
	if len(matched) == 0 {
		switch {
		case d.Absent && d.Container != "":
			return pass("no container named %s", d.Container)
		case d.Absent:
			return pass("no container has label %s", d.Label)
		case d.Container != "":
			return fail("no container named %s%s", d.Container, foundList(all))
		}
		return fail("no container has label %s%s", d.Label, foundList(all))
	}
	if d.Absent {
		if d.Container != "" {
			return fail("container %s still exists, expected it removed", d.Container)
		}
		var ns []string
		for _, m := range matched {
			ns = append(ns, m.name)
		}
		return fail("%s %s label %s (%s), expected none", plural(len(ns), "container", "containers"),
			verb(len(ns), "has", "have"), d.Label, names(ns))
	}
	var oks []string
	for _, m := range matched {
		info, err := api.ContainerInspect(ctx, m.id, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return fail("container %s was removed while it was being checked", m.name)
		}
		if err != nil {
			return dockerErr(err)
		}
		ok, msg, o := judgeContainer(ctx, api, d, m.name, info.Container)
		if o != nil {
			return *o
		}
		if !ok {
			return fail("%s", msg)
		}
		oks = append(oks, msg)
	}
	if d.Container != "" {
		return pass("%s", oks[0])
	}
	return pass("%s %s label %s: %s", plural(len(matched), "container", "containers"),
		verb(len(matched), "has", "have"), d.Label, strings.Join(oks, "; "))
}

// judgeContainer checks one inspected container. On a pass msg lists what
// holds; on a failure it says what does not. o is set when the engine
// could not be read.
func judgeContainer(ctx context.Context, api *client.Client, d *DockerSpec, name string, c container.InspectResponse) (bool, string, *outcome) {
	subject := "container " + name
	var holds []string
	status := ""
	exitCode := 0
	if c.State != nil {
		status, exitCode = string(c.State.Status), c.State.ExitCode
	}
	stopped := status == "exited" || status == "dead"
	if d.State != "" {
		if status != d.State {
			if stopped {
				return false, fmt.Sprintf("%s is %s (code %d), expected %s", subject, status, exitCode, d.State), nil
			}
			return false, fmt.Sprintf("%s is %s, expected %s", subject, status, d.State), nil
		}
		holds = append(holds, "is "+status)
	}
	if d.ExitCode != nil {
		switch {
		case status == "created":
			return false, fmt.Sprintf("%s has not run yet, expected it to exit with code %d", subject, *d.ExitCode), nil
		case !stopped:
			return false, fmt.Sprintf("%s is still %s, expected it to exit with code %d", subject, status, *d.ExitCode), nil
		case exitCode != *d.ExitCode:
			return false, fmt.Sprintf("%s exited with code %d, expected %d", subject, exitCode, *d.ExitCode), nil
		}
		holds = append(holds, fmt.Sprintf("exited with code %d", exitCode))
	}
	if len(d.Ports) > 0 {
		// A stopped container has no live bindings; its configuration says
		// what it publishes when it runs.
		var bindings network.PortMap
		if status == "running" && c.NetworkSettings != nil {
			bindings = c.NetworkSettings.Ports
		} else if c.HostConfig != nil {
			bindings = c.HostConfig.PortBindings
		}
		for _, p := range d.Ports {
			ok, msg := judgePort(subject, p, bindings)
			if !ok {
				return false, msg, nil
			}
			holds = append(holds, msg)
		}
	}
	for _, want := range d.Mounts {
		if !hasMount(c.Mounts, want) {
			return false, mountFailure(subject, want, c.Mounts), nil
		}
		holds = append(holds, "mounts "+want)
	}
	if len(d.Env) > 0 {
		var env []string
		if c.Config != nil {
			env = c.Config.Env
		}
		for _, want := range d.Env {
			ok, msg := judgeEnv(subject, want, env)
			if !ok {
				return false, msg, nil
			}
			holds = append(holds, msg)
		}
	}
	if d.Log != nil {
		tty := c.Config != nil && c.Config.Tty
		logs, err := containerLogs(ctx, api, c.ID, tty)
		if err != nil {
			o := dockerErr(err)
			return false, "", &o
		}
		if !logMatches(d.Log, logs) {
			if last := lastLine(logs); last != "" {
				return false, fmt.Sprintf("%s's logs have no line matching %s (last line: %q)", subject, d.Log, last), nil
			}
			return false, fmt.Sprintf("%s has printed nothing, expected a line matching %s", subject, d.Log), nil
		}
		holds = append(holds, "logs a line matching "+d.Log.String())
	}
	if len(holds) == 0 {
		return true, subject + " exists", nil
	}
	return true, subject + " " + strings.Join(holds, ", "), nil
}

// judgePort checks one published port against the container's bindings.
func judgePort(subject string, p PortSpec, bindings network.PortMap) (bool, string) {
	port, err := network.ParsePort(p.containerPort())
	if err != nil {
		return false, fmt.Sprintf("%s: cannot read port %s", subject, p.Text)
	}
	var hostPorts, hostAddrs []string
	for _, b := range bindings[port] {
		if b.HostPort == "" {
			continue
		}
		hostPorts = append(hostPorts, b.HostPort)
		ip := "0.0.0.0"
		if b.HostIP.IsValid() {
			ip = b.HostIP.String()
		}
		hostAddrs = append(hostAddrs, net.JoinHostPort(ip, b.HostPort))
	}
	sort.Strings(hostPorts)
	hostPorts = compactStrings(hostPorts)
	if len(hostPorts) == 0 {
		if p.HostPort == "" {
			return false, fmt.Sprintf("%s does not publish %s", subject, p.containerPort())
		}
		return false, fmt.Sprintf("%s does not publish %s, expected host port %s", subject, p.containerPort(), p.HostPort)
	}
	if p.HostPort == "" {
		return true, fmt.Sprintf("publishes %s on host port %s", p.containerPort(), strings.Join(hostPorts, ", "))
	}
	if !slices.Contains(hostPorts, p.HostPort) {
		return false, fmt.Sprintf("%s publishes %s on host port %s, expected %s", subject, p.containerPort(), strings.Join(hostPorts, ", "), p.HostPort)
	}
	if p.HostIP != "" && !slices.Contains(hostAddrs, net.JoinHostPort(p.HostIP, p.HostPort)) {
		sort.Strings(hostAddrs)
		return false, fmt.Sprintf("%s publishes %s on %s, expected %s", subject, p.containerPort(), strings.Join(hostAddrs, ", "), net.JoinHostPort(p.HostIP, p.HostPort))
	}
	return true, "publishes " + p.HostPort + ":" + p.containerPort()
}

// hasMount matches "/dest", "volume" or "source:/dest".
func hasMount(mounts []container.MountPoint, want string) bool {
	src, dst, pair := splitMount(want)
	for _, m := range mounts {
		switch {
		case pair:
			if m.Destination == dst && (m.Name == src || m.Source == src) {
				return true
			}
		case strings.HasPrefix(want, "/"):
			if m.Destination == want {
				return true
			}
		default:
			if m.Name == want {
				return true
			}
		}
	}
	return false
}

// splitMount splits "source:/dest"; pair is false for a lone path or name.
func splitMount(s string) (src, dst string, pair bool) {
	i := strings.LastIndex(s, ":/")
	if i <= 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

func mountFailure(subject, want string, mounts []container.MountPoint) string {
	var have []string
	for _, m := range mounts {
		switch {
		case m.Type == "volume" && m.Name != "" && len(m.Name) != 64: // 64 hex digits: anonymous
			have = append(have, m.Name+":"+m.Destination)
		case m.Type == "bind" && m.Source != "":
			have = append(have, m.Source+":"+m.Destination)
		default:
			have = append(have, m.Destination)
		}
	}
	list := " (it has no mounts)"
	if len(have) > 0 {
		list = " (mounts: " + names(have) + ")"
	}
	src, dst, pair := splitMount(want)
	switch {
	case pair:
		return fmt.Sprintf("%s does not mount %s at %s%s", subject, src, dst, list)
	case strings.HasPrefix(want, "/"):
		return fmt.Sprintf("%s has no mount at %s%s", subject, want, list)
	}
	return fmt.Sprintf("%s does not mount volume %s%s", subject, want, list)
}

// judgeEnv checks "KEY=VALUE" or "KEY" against a container's environment;
// the last assignment of a key wins, as in the process.
func judgeEnv(subject, want string, env []string) (bool, string) {
	key, val, withVal := strings.Cut(want, "=")
	got, found := "", false
	for _, e := range env {
		if k, v, _ := strings.Cut(e, "="); k == key {
			got, found = v, true
		}
	}
	switch {
	case !found:
		return false, fmt.Sprintf("%s has no environment variable %s", subject, key)
	case withVal && got != val:
		return false, fmt.Sprintf("%s has %s=%s, expected %s=%s", subject, key, clip(got, maxLine), key, val)
	case withVal:
		return true, "sets " + want
	}
	return true, "sets " + key
}

// maxLog bounds the logs read for one check.
const maxLog = 4 << 20

// containerLogs reads the tail of a container's stdout and stderr.
func containerLogs(ctx context.Context, api *client.Client, id string, tty bool) (string, error) {
	rc, err := api.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "2000"})
	if err != nil {
		return "", fmt.Errorf("logs of container %s: %w", id, err)
	}
	defer rc.Close()
	r := io.LimitReader(rc, maxLog)
	var buf bytes.Buffer
	if tty {
		_, err = io.Copy(&buf, r)
	} else {
		_, err = stdcopy.StdCopy(&buf, &buf, r)
	}
	if err != nil {
		return "", fmt.Errorf("read logs of container %s: %w", id, err)
	}
	return buf.String(), nil
}

// logMatches tries the pattern on each line, then on the whole text (for
// patterns that span lines).
func logMatches(re *regexp.Regexp, logs string) bool {
	for line := range strings.SplitSeq(logs, "\n") {
		if re.MatchString(strings.TrimRight(line, "\r")) {
			return true
		}
	}
	return re.MatchString(logs)
}
