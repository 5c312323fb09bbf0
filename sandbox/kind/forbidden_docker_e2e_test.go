//go:build e2e

package kind_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/sandboxtest"
)

// forbidden is one thing a learner must not be able to do from their
// workstation, and the words of the refusal they must get.
type forbidden struct {
	action string         // as the learner would type it
	script string         // run in the workstation as the learner
	want   *regexp.Regexp // the refusal's text
}

// refusedBy is the start of every refusal of the engine's authorization
// plugin, as the docker client prints it.
const refusedBy = `authorization denied by plugin kubelab-authz: kubelab: `

// TestE2EForbiddenDocker: from a learner's workstation, each way of
// becoming root on the host through their Docker engine (or of gaining
// privilege in the workstation itself) is tried and must be refused with
// a message that says what and why; ordinary use of the engine still
// works.
func TestE2EForbiddenDocker(t *testing.T) {
	requireDocker(t)
	ctx := t.Context()
	p := newProvider(t)
	id := sandboxtest.NewID("kl-forbid")
	t.Cleanup(func() { _ = p.Delete(context.Background(), id) })
	sb, err := p.Create(ctx, id, sandbox.Spec{Owner: "ada", Kind: sandbox.KindDocker, Images: []string{helloImage}}, progressLogger(t, time.Now()))
	if err != nil {
		t.Fatalf("create: %v", err)
	}

	// Allowed controls: the engine still does ordinary work.
	controls := []struct{ what, script string }{
		{"docker run --rm " + helloImage, "docker run --rm " + helloImage + " --version"},
		{"docker run -v named:/data", "docker run --rm -v named:/data " + helloImage + " --version"},
		{"docker run --mount type=volume, -p, --tmpfs, --cap-drop ALL, --cap-add CHOWN",
			"docker run --rm --mount type=volume,src=named,dst=/d -p 8080:8080 --tmpfs /t --cap-drop ALL --cap-add CHOWN " + helloImage + " --version"},
		{"docker run -d (the target of the exec below)", "docker run -d --name target " + helloImage},
		{"docker exec", "docker exec target /hello --version"},
		{"docker volume create", "docker volume create plain"},
		{"docker ps, images, inspect", "docker ps -q && docker images -q && docker inspect target >/dev/null"},
	}
	for _, c := range controls {
		r := exec1(t, sb, c.script+" 2>&1")
		if r.ExitCode != 0 {
			t.Errorf("allowed control %q failed: exit %d: %s%s", c.what, r.ExitCode, r.Stdout, r.Stderr)
			continue
		}
		t.Logf("ALLOWED %-60s ok", c.what)
	}

	results := map[string]int{}
	t.Logf("%-58s | %-8s | %s", "FORBIDDEN ACTION", "RESULT", "MESSAGE")
	for _, f := range forbiddenActions() {
		r := exec1(t, sb, f.script+" 2>&1")
		out := strings.TrimSpace(string(r.Stdout) + string(r.Stderr))
		result := "refused"
		switch {
		case r.ExitCode == 0:
			result = "ALLOWED"
			t.Errorf("%s was allowed: %s", f.action, out)
		case !f.want.MatchString(out):
			result = "OTHER"
			t.Errorf("%s failed without the expected refusal %q: exit %d: %s", f.action, f.want, r.ExitCode, out)
		}
		results[result]++
		t.Logf("%-58s | %-8s | %s", f.action, result, messageLine(out))
	}
	tried := results["refused"] + results["ALLOWED"] + results["OTHER"]
	t.Logf("forbidden actions: %d tried, %d refused, %d allowed", tried, results["refused"], results["ALLOWED"])
}

// forbiddenActions lists what is tried, the docker CLI's way and the raw
// Engine API's way (curl, as a learner could), then in the workstation.
func forbiddenActions() []forbidden {
	img := helloImage
	refused := func(what string) *regexp.Regexp {
		return regexp.MustCompile(regexp.QuoteMeta(refusedBy+what) + ` is refused: \S`)
	}
	run := func(flags, what string) forbidden {
		return forbidden{"docker run " + flags, "docker run --rm " + flags + " " + img + " --version", refused(what)}
	}
	// api posts body to path on the engine and fails unless it succeeds.
	api := func(action, path, body, what string, extra ...string) forbidden {
		script := `out=$(curl -s -w '\nHTTP %{http_code}' -H 'Content-Type: application/json' ` + strings.Join(extra, " ") +
			` --data-binary '` + body + `' http://docker:2375` + path + `); echo "$out"; case "$out" in *"HTTP 20"*) exit 0;; esac; exit 1`
		return forbidden{action, script, refused(what)}
	}
	return []forbidden{
		run("--privileged", "--privileged"),
		run("-v /:/host", "-v /:/host"),
		run("--mount type=bind,src=/,dst=/h", "--mount type=bind"),
		run("--mount type=volume,src=v2,dst=/d,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/", "--mount type=volume with volume-opt device=/"),
		run("--pid=host", "--pid host"),
		run("--net=host", "--network host"),
		run("--ipc=host", "--ipc host"),
		run("--uts=host", "--uts host"),
		run("--userns=host", "--userns host"),
		run("--cgroupns=host", "--cgroupns host"),
		run("--cap-add SYS_ADMIN", "--cap-add SYS_ADMIN"),
		run("--cap-add NET_ADMIN", "--cap-add NET_ADMIN"),
		run("--cap-add ALL", "--cap-add ALL"),
		run("--device /dev/kmsg", "--device"),
		run("--security-opt seccomp=unconfined", "--security-opt seccomp=unconfined"),
		run("--security-opt apparmor=unconfined", "--security-opt apparmor=unconfined"),
		run("--security-opt label=disable", "--security-opt label=disable"),
		run("--security-opt systempaths=unconfined", "--security-opt systempaths=unconfined"),
		run("--sysctl net.ipv4.ip_forward=1", "--sysctl net.ipv4.ip_forward=1"),
		run("--runtime runsc", "--runtime runsc"),
		run("--cgroup-parent /", "--cgroup-parent /"),
		{"docker exec --privileged", "docker exec --privileged target /hello --version", refused("docker exec --privileged")},
		{"docker volume create -o type=none -o o=bind -o device=/", "docker volume create --opt type=none --opt o=bind --opt device=/ hostroot",
			refused("docker volume create --opt device=/")},
		{"docker network connect host target", "docker network connect host target", refused("connecting a container to the host network")},
		{"docker plugin install vieux/sshfs", "docker plugin install --grant-all-permissions vieux/sshfs", refused("installing, enabling or configuring a Docker plugin")},
		{"docker swarm init", "docker swarm init", refused("swarm init/join/update")},
		{"docker build --network host", "mkdir -p /tmp/b && echo 'FROM " + img + "' >/tmp/b/Dockerfile && DOCKER_BUILDKIT=0 docker build --network host /tmp/b", refused("docker build --network host")},
		api("API: HostConfig at the top level (deprecated form)", "/v1.41/containers/create",
			`{"Image":"`+img+`","Privileged":true}`, "--privileged"),
		api("API: chunked body", "/v1.41/containers/create",
			`{"Image":"`+img+`","HostConfig":{"Binds":["/:/host"]}}`, "-v /:/host", "-H 'Transfer-Encoding: chunked'"),
		api("API: container start with host settings (API 1.23)", "/v1.23/containers/target/start",
			`{"Privileged":true}`, "starting a container with API version 1.23"),
		api("API: exec with Privileged", "/containers/target/exec",
			`{"Cmd":["/hello","--version"],"Privileged":true}`, "docker exec --privileged"),
		{"workstation: mount -t tmpfs x /mnt", "mount -t tmpfs x /mnt",
			regexp.MustCompile(`(?i)must be superuser|permission denied|operation not permitted`)},
		{"workstation: write /proc/sys/kernel/hostname", "echo pwned > /proc/sys/kernel/hostname",
			regexp.MustCompile(`(?i)read-only file system|permission denied`)},
		{"workstation: sudo id", `command -v sudo >/dev/null || { echo "sudo: not installed"; exit 127; }; sudo -n id`,
			regexp.MustCompile(`(?i)not installed|password is required|not allowed|permission denied|effective uid is not 0`)},
		{"workstation: su root", `command -v su >/dev/null || { echo "su: not installed"; exit 127; }; su -c id root </dev/null`,
			regexp.MustCompile(`(?i)not installed|authentication failure|must be run from a terminal|permission denied`)},
	}
}

// messageLine is the line of out that carries the refusal, else its
// first line: enough for the table.
func messageLine(out string) string {
	lines := strings.Split(out, "\n")
	for _, l := range lines {
		if strings.Contains(l, "kubelab: ") {
			return l
		}
	}
	return lines[0]
}
