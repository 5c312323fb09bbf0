package checker

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/moby/client"
	"sigs.k8s.io/yaml"
)

// engineState is testdata/engine.yaml.
type engineState struct {
	Containers []struct {
		ID           string                          `json:"id"`
		Name         string                          `json:"name"`
		Image        string                          `json:"image"`
		State        string                          `json:"state"`
		ExitCode     int                             `json:"exitCode"`
		Labels       map[string]string               `json:"labels"`
		Env          []string                        `json:"env"`
		Tty          bool                            `json:"tty"`
		Ports        map[string][]any                `json:"ports"`
		PortBindings map[string][]any                `json:"portBindings"`
		Mounts       []map[string]any                `json:"mounts"`
		Logs         []struct{ Stream, Text string } `json:"logs"`
	} `json:"containers"`
	Images []struct {
		ID   string   `json:"id"`
		Tags []string `json:"tags"`
	} `json:"images"`
	Volumes  []string `json:"volumes"`
	Networks []string `json:"networks"`
}

// versionPrefix is the /v1.NN the client puts before every path.
var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)

// newFakeEngine serves the few Engine API endpoints the checker calls,
// from an engine state such as testdata/engine.yaml. A write fails the
// test.
func newFakeEngine(t *testing.T, stateFile string) *httptest.Server {
	t.Helper()
	raw, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	var st engineState
	if err := yaml.UnmarshalStrict(raw, &st); err != nil {
		t.Fatalf("%s: %v", stateFile, err)
	}
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(v); err != nil {
			t.Errorf("encode: %v", err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			t.Errorf("the fake engine received a write: %s %s", r.Method, r.URL.Path)
			http.Error(w, "no writes", http.StatusMethodNotAllowed)
			return
		}
		p := versionPrefix.ReplaceAllString(r.URL.Path, "")
		switch {
		case p == "/_ping":
			w.Header().Set("Api-Version", "1.47")
			w.Header().Set("Ostype", "linux")
			w.Write([]byte("OK"))
			return
		case p == "/containers/json":
			if r.URL.Query().Get("all") != "1" {
				t.Errorf("containers listed without all=1: stopped containers would be missed")
			}
			var out []map[string]any
			for _, c := range st.Containers {
				out = append(out, map[string]any{"Id": c.ID, "Names": []string{"/" + c.Name}, "Image": c.Image,
					"State": c.State, "Labels": c.Labels})
			}
			reply(w, out)
			return
		case p == "/images/json":
			var out []map[string]any
			for _, img := range st.Images {
				out = append(out, map[string]any{"Id": img.ID, "RepoTags": img.Tags})
			}
			reply(w, out)
			return
		case p == "/volumes":
			var vols []map[string]any
			for _, v := range st.Volumes {
				vols = append(vols, map[string]any{"Name": v, "Driver": "local"})
			}
			reply(w, map[string]any{"Volumes": vols})
			return
		case p == "/networks":
			var nets []map[string]any
			for _, n := range st.Networks {
				nets = append(nets, map[string]any{"Name": n, "Id": n + "-id"})
			}
			reply(w, nets)
			return
		}
		for _, c := range st.Containers {
			switch p {
			case "/containers/" + c.ID + "/json":
				reply(w, map[string]any{
					"Id": c.ID, "Name": "/" + c.Name, "Image": c.Image,
					"State":           map[string]any{"Status": c.State, "Running": c.State == "running", "ExitCode": c.ExitCode},
					"Config":          map[string]any{"Env": c.Env, "Tty": c.Tty, "Labels": c.Labels},
					"HostConfig":      map[string]any{"PortBindings": c.PortBindings},
					"NetworkSettings": map[string]any{"Ports": c.Ports},
					"Mounts":          c.Mounts,
				})
				return
			case "/containers/" + c.ID + "/logs":
				if r.URL.Query().Get("stdout") != "1" || r.URL.Query().Get("stderr") != "1" {
					t.Errorf("logs read without both streams: %s", r.URL.RawQuery)
				}
				var buf bytes.Buffer
				for _, l := range c.Logs {
					if c.Tty {
						buf.WriteString(l.Text)
						continue
					}
					hdr := make([]byte, 8)
					hdr[0] = 1
					if l.Stream == "stderr" {
						hdr[0] = 2
					}
					binary.BigEndian.PutUint32(hdr[4:], uint32(len(l.Text)))
					buf.Write(hdr)
					buf.WriteString(l.Text)
				}
				w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
				w.Write(buf.Bytes())
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		reply(w, map[string]string{"message": "No such object: " + p})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDocker(t *testing.T) {
	t.Parallel()
	engine := newFakeEngine(t, "testdata/engine.yaml")
	host := "tcp://" + strings.TrimPrefix(engine.URL, "http://")
	const webMounts = "(mounts: /home/learner/site:/usr/share/nginx/html, data:/data)"
	tests := []struct {
		name   string
		block  string
		passed bool
		msg    string
	}{
		{"running", "docker: {container: web, state: running}", true, "container web is running"},
		{"exited, expected running", "docker: {container: crash, state: running}", false, "container crash is exited (code 137), expected running"},
		{"running, expected exited", "docker: {container: api, state: exited}", false, "container api is running, expected exited"},
		{"missing container", "docker: {container: nope}", false, "no container named nope (found: api, crash, job, web)"},
		{"leading slash", "docker: {container: /job}", true, "container job exists"},
		{"exit code", "docker: {container: job, exitCode: 0}", true, "container job exited with code 0"},
		{"wrong exit code", "docker: {container: crash, exitCode: 0}", false, "container crash exited with code 137, expected 0"},
		{"still running", "docker: {container: web, exitCode: 0}", false, "container web is still running, expected it to exit with code 0"},
		{"port", "docker: {container: web, ports: ['8081:80/tcp']}", true, "container web publishes 8081:80/tcp"},
		{"wrong host port", "docker: {container: web, ports: ['8080:80']}", false, "container web publishes 80/tcp on host port 8081, expected 8080"},
		{"port not published", "docker: {container: web, ports: ['443']}", false, "container web does not publish 443/tcp"},
		{"port not published, host port", "docker: {container: web, ports: ['8443:443']}", false, "container web does not publish 443/tcp, expected host port 8443"},
		{"host address", "docker: {container: web, ports: ['127.0.0.1:8081:80']}", false,
			"container web publishes 80/tcp on 0.0.0.0:8081, [::]:8081, expected 127.0.0.1:8081"},
		{"any host port", "docker: {container: web, ports: ['80']}", true, "container web publishes 80/tcp on host port 8081"},
		{"stopped container's configured port", "docker: {container: crash, ports: ['8080:80']}", true, "container crash publishes 8080:80/tcp"},
		{"mounts", "docker: {container: web, mounts: [/data, data, '/home/learner/site:/usr/share/nginx/html']}", true,
			"container web mounts /data, mounts data, mounts /home/learner/site:/usr/share/nginx/html"},
		{"missing mount point", "docker: {container: web, mounts: [/config]}", false, "container web has no mount at /config " + webMounts},
		{"missing volume", "docker: {container: web, mounts: [cache]}", false, "container web does not mount volume cache " + webMounts},
		{"wrong source", "docker: {container: web, mounts: ['cache:/data']}", false, "container web does not mount cache at /data " + webMounts},
		{"no mounts", "docker: {container: api, mounts: [/data]}", false, "container api has no mount at /data (it has no mounts)"},
		{"env", "docker: {container: web, env: [MODE=prod, COLOR]}", true, "container web sets MODE=prod, sets COLOR"},
		{"env value", "docker: {container: web, env: [MODE=dev]}", false, "container web has MODE=prod, expected MODE=dev"},
		{"env missing", "docker: {container: web, env: [TOKEN]}", false, "container web has no environment variable TOKEN"},
		{"log line on stdout", "docker: {container: web, log: '^listening on :80$'}", true, "container web logs a line matching ^listening on :80$"},
		{"log line on stderr", "docker: {container: web, log: no config}", true, "container web logs a line matching no config"},
		{"log line missing", "docker: {container: web, log: ready}", false, `container web's logs have no line matching ready (last line: "listening on :80")`},
		{"tty logs", "docker: {container: job, log: '^done$'}", true, "container job logs a line matching ^done$"},
		{"no logs", "docker: {container: api, log: x}", false, "container api has printed nothing, expected a line matching x"},
		{"everything at once", "docker: {container: web, state: running, ports: ['8081:80'], env: [MODE=prod]}", true,
			"container web is running, publishes 8081:80/tcp, sets MODE=prod"},
		{"label, one failing", "docker: {label: app=web, state: running}", false, "container crash is exited (code 137), expected running"},
		{"label", "docker: {label: tier=back, state: running}", true, "1 container has label tier=back: container api is running"},
		{"label key", "docker: {label: tier}", true, "1 container has label tier: container api exists"},
		{"label missing", "docker: {label: app=none}", false, "no container has label app=none (found: api, crash, job, web)"},
		{"absent container", "docker: {container: web, absent: true}", false, "container web still exists, expected it removed"},
		{"absent container gone", "docker: {container: gone, absent: true}", true, "no container named gone"},
		{"absent label", "docker: {label: app=web, absent: true}", false, "2 containers have label app=web (crash, web), expected none"},
		{"absent label gone", "docker: {label: app=none, absent: true}", true, "no container has label app=none"},
		{"image", "docker: {image: 'kubelab/hello:v1'}", true, "image kubelab/hello:v1 is present"},
		{"image other tag", "docker: {image: 'kubelab/hello:v2'}", false, "image kubelab/hello:v2 not found (found: kubelab/hello:v1)"},
		{"image short name", "docker: {image: nginx}", true, "image nginx is present"},
		{"image full name", "docker: {image: 'docker.io/library/nginx:latest'}", true, "image docker.io/library/nginx:latest is present"},
		{"image missing", "docker: {image: 'redis:7'}", false, "image redis:7 not found (found: kubelab/api:v2, kubelab/hello:v1, nginx:latest)"},
		{"image still there", "docker: {image: 'kubelab/hello:v1', absent: true}", false, "image kubelab/hello:v1 is still present, expected it removed"},
		{"image gone", "docker: {image: 'kubelab/hello:v2', absent: true}", true, "image kubelab/hello:v2 is not present"},
		{"volume", "docker: {volume: data}", true, "volume data exists"},
		{"volume missing", "docker: {volume: logs}", false, "no volume named logs (found: cache, data)"},
		{"volume still there", "docker: {volume: cache, absent: true}", false, "volume cache still exists, expected it removed"},
		{"network", "docker: {network: appnet}", true, "network appnet exists"},
		{"network missing", "docker: {network: backend}", false, "no network named backend (found: appnet, bridge, host, none)"},
		{"network gone", "docker: {network: backend, absent: true}", true, "no network named backend"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Evaluate(t.Context(), &fakeTarget{dockerHost: host}, Check{ID: "d", Spec: mustCompile(t, "docker", tt.block)})
			wantResult(t, got, tt.passed, tt.msg)
			if got.Err != nil {
				t.Errorf("Result.Err = %v", got.Err)
			}
		})
	}
}

func TestDockerReadOnly(t *testing.T) {
	t.Parallel()
	engine := newFakeEngine(t, "testdata/engine.yaml")
	dc, err := newDockerClient("tcp://" + strings.TrimPrefix(engine.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer dc.close()
	ctx := context.Background()
	_, err = dc.api.ContainerRemove(ctx, "web", client.ContainerRemoveOptions{Force: true})
	if err == nil || !strings.Contains(err.Error(), "checker is read-only: refused DELETE /v") || !strings.Contains(err.Error(), "/containers/web") {
		t.Errorf("remove: got %v, want a read-only refusal", err)
	}
	_, err = dc.api.ContainerStop(ctx, "web", client.ContainerStopOptions{})
	if err == nil || !strings.Contains(err.Error(), "checker is read-only: refused POST") {
		t.Errorf("stop: got %v, want a read-only refusal", err)
	}
	// Reads still work through the same client.
	if _, err := dc.api.ContainerList(ctx, client.ContainerListOptions{All: true}); err != nil {
		t.Errorf("list: %v", err)
	}
}

func TestDockerEngineDown(t *testing.T) {
	t.Parallel()
	// A listener that is closed at once: connections are refused.
	srv := httptest.NewServer(http.NotFoundHandler())
	host := "tcp://" + strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	got := Evaluate(t.Context(), &fakeTarget{dockerHost: host}, Check{ID: "d", Spec: mustCompile(t, "docker", "docker: {container: web}")})
	wantResult(t, got, false, "could not reach the Docker engine; it may still be starting")
	if got.Err == nil {
		t.Error("Result.Err is nil, want the connection error for the log")
	}
}
