package checker

import (
	"errors"
	"reflect"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		kind  string
		block string
		msg   string
		line  int
	}{
		{"unknown kind", "shell", "id: x", `unknown check kind "shell" (known: command, kube, pods, rollout, http, docker)`, 0},
		{"quiz is not compiled", "quiz", "id: x", "quiz blocks are graded with GradeQuiz, not compiled", 0},
		{"invalid YAML", "command", "id: x\ncommand: [\n", "invalid YAML: line 2: did not find expected node content", 2},
		{"empty block", "command", "", "empty check block", 0},
		{"not a mapping", "command", "- run: x", "a check block must be a YAML mapping", 1},
		{"kind missing", "command", "id: x\ntitle: y", "command is required", 1},
		{"two kinds", "kube", "id: x\nkube: {resource: pods}\npods: {selector: a=b}", "a check has one kind: found both kube and pods", 3},
		{"unknown top-level key", "command", "id: x\ncommand: {run: ls}\nquestion: why?", "unknown key question", 3},
		{"typo at top level", "command", "id: x\ncomand: {run: ls}", "unknown key comand (did you mean command?)", 2},
		{"body not a mapping", "command", "command: ls", "command must be a mapping", 1},
		{"command.run is required", "command", "command: {stdout: ok}", "command.run is required", 1},
		{"command.run empty", "command", "command:\n  run:\n", "command.run is required", 2},
		{"unknown command key", "command", "command:\n  run: ls\n  stderr: x", "unknown key command.stderr", 3},
		{"bad stdout regexp", "command", "command:\n  run: ls\n  stdout: '(ok'", "command.stdout: invalid regexp \"(ok\": missing closing ): `(ok`", 3},
		{"repeated key", "command", "command:\n  run: ls\n  run: pwd", "command.run is given twice", 3},
		{"kube.resource is required", "kube", "kube: {namespace: x}", "kube.resource is required", 1},
		{"kube typo", "kube", "kube:\n  resource: pods\n  namepsace: x", "unknown key kube.namepsace (did you mean namespace?)", 3},
		{"kube bad resource", "kube", "kube: {resource: a/b/c}", `kube.resource: want TYPE/NAME like deployments/web, got "a/b/c"`, 1},
		{"kube empty name", "kube", "kube: {resource: deployments/}", `kube.resource: want TYPE/NAME like deployments/web, got "deployments/"`, 1},
		{"kube selector with name", "kube", "kube:\n  resource: deploy/web\n  selector: app=web", "kube.selector cannot be used with a named resource (deploy/web)", 3},
		{"kube bad selector", "kube", "kube:\n  resource: pods\n  selector: 'app in (web'", `kube.selector: invalid label selector "app in (web"`, 3},
		{"kube count with name", "kube", "kube:\n  resource: deploy/web\n  count: 1", "kube.count needs a list: give kube.resource without a name", 3},
		{"kube count type", "kube", "kube:\n  resource: pods\n  count: many", "kube.count must be a whole number or {min: N, max: N}", 3},
		{"kube count negative", "kube", "kube:\n  resource: pods\n  count: -1", "kube.count must not be negative", 3},
		{"kube count bounds", "kube", "kube:\n  resource: pods\n  count: {min: 3, max: 2}", "kube.count: min 3 is above max 2", 3},
		{"kube count empty", "kube", "kube:\n  resource: pods\n  count: {}", "kube.count needs min or max", 3},
		{"kube absent with expect", "kube", "kube:\n  resource: deploy/web\n  absent: true\n  expect:\n    - {path: .x, exists: true}", "kube.absent cannot be combined with kube.expect", 3},
		{"kube absent not bool", "kube", "kube:\n  resource: deploy/web\n  absent: yes please", "kube.absent must be true or false", 3},
		{"kube expect not a list", "kube", "kube:\n  resource: deploy/web\n  expect: {path: .x}", "kube.expect must be a list", 3},
		{"kube expect op missing", "kube", "kube:\n  resource: deploy/web\n  expect:\n    - {path: .a, equals: 1}\n    - {path: .b}",
			"kube.expect[1]: one of equals, matches, exists, contains, gte, lte, len is required", 5},
		{"kube expect two ops", "kube", "kube:\n  resource: deploy/web\n  expect:\n    - {path: .a, equals: 1, gte: 0}",
			"kube.expect[0]: use only one of equals, matches, exists, contains, gte, lte, len (found equals and gte)", 4},
		{"kube expect path missing", "kube", "kube:\n  resource: deploy/web\n  expect:\n    - {equals: 1}", "kube.expect[0].path is required", 4},
		{"kube expect bad path", "kube", "kube:\n  resource: deploy/web\n  expect:\n    - {path: '.status[', exists: true}",
			"kube.expect[0].path: invalid JSONPath .status[: unterminated array", 4},
		{"kube expect unknown op", "kube", "kube:\n  resource: deploy/web\n  expect:\n    - {path: .a, equal: 1}", "unknown key kube.expect[0].equal (did you mean equals?)", 4},
		{"kube expect exists type", "kube", "kube:\n  resource: deploy/web\n  expect:\n    - {path: .a, exists: 1}", "kube.expect[0].exists must be true or false", 4},
		{"kube expect gte type", "kube", "kube:\n  resource: deploy/web\n  expect:\n    - {path: .a, gte: lots}", "kube.expect[0].gte must be a number or a quantity like 500m or 1Gi", 4},
		{"kube expect len type", "kube", "kube:\n  resource: deploy/web\n  expect:\n    - {path: .a, len: -2}", "kube.expect[0].len must not be negative", 4},
		{"kube expect matches", "kube", "kube:\n  resource: deploy/web\n  expect:\n    - {path: .a, matches: '[a'}",
			"kube.expect[0].matches: invalid regexp \"[a\": missing closing ]: `[a`", 4},
		{"pods selector required", "pods", "pods: {namespace: x}", "pods.selector is required (or pods.name for one pod)", 1},
		{"pods selector and name", "pods", "pods:\n  selector: a=b\n  name: web", "pods: use selector or name, not both", 3},
		{"pods phase", "pods", "pods:\n  selector: a=b\n  phase: Runing", `pods.phase must be one of Pending, Running, Succeeded, Failed, Unknown (got "Runing")`, 3},
		{"pods ready type", "pods", "pods:\n  selector: a=b\n  ready: 1", "pods.ready must be true or false", 3},
		{"pods restarts scalar", "pods", "pods:\n  selector: a=b\n  restarts: 2", "pods.restarts must be a mapping like {lte: 2}", 3},
		{"pods restarts keys", "pods", "pods:\n  selector: a=b\n  restarts: {max: 2}", "unknown key pods.restarts.max", 3},
		{"pods count with name", "pods", "pods:\n  name: web\n  count: 2", "pods.count needs pods.selector, not pods.name", 3},
		{"rollout kind", "rollout", "rollout: {resource: pod/web}", `rollout.resource must be deployment/NAME, statefulset/NAME or daemonset/NAME (got "pod/web")`, 1},
		{"rollout name", "rollout", "rollout: {resource: deployments}", `rollout.resource must be deployment/NAME, statefulset/NAME or daemonset/NAME (got "deployments")`, 1},
		{"rollout container without image", "rollout", "rollout:\n  resource: deploy/web\n  container: web", "rollout.container names the container whose image to check: give rollout.image too", 3},
		{"rollout revision", "rollout", "rollout:\n  resource: deploy/web\n  revision: 0", "rollout.revision must be 1 or more", 3},
		{"http service", "http", "http: {port: 80}", "http.service is required", 1},
		{"http path", "http", "http:\n  service: web\n  path: index.html", `http.path must start with / (got "index.html")`, 3},
		{"http status", "http", "http:\n  service: web\n  status: 42", "http.status must be an HTTP status code like 200", 3},
		{"http status type", "http", "http:\n  service: web\n  status: ok", "http.status must be a whole number", 3},
		{"http scheme", "http", "http:\n  service: web\n  scheme: ftp", "http.scheme must be http or https", 3},
		{"docker target", "docker", "docker: {state: running}", "docker: one of container, label, image, volume, network is required", 1},
		{"docker two targets", "docker", "docker:\n  container: web\n  image: nginx", "docker: use only one of container, label, image, volume, network (found container and image)", 3},
		{"docker state on image", "docker", "docker:\n  image: nginx\n  state: running", "docker.state applies to containers: give docker.container or docker.label", 3},
		{"docker absent with state", "docker", "docker:\n  container: web\n  absent: true\n  state: running", "docker.absent cannot be combined with docker.state", 4},
		{"docker state", "docker", "docker:\n  container: web\n  state: up", `docker.state must be one of created, running, paused, restarting, removing, exited, dead (got "up")`, 3},
		{"docker exit code while running", "docker", "docker:\n  container: web\n  state: running\n  exitCode: 0", "docker.exitCode needs a stopped container, not state running", 4},
		{"docker port", "docker", "docker:\n  container: web\n  ports: ['8080:http']", `docker.ports[0]: want HOST:CONTAINER[/PROTO] like 8080:80/tcp, got "8080:http"`, 3},
		{"docker port proto", "docker", "docker:\n  container: web\n  ports: [80/icmp]", `docker.ports[0]: want HOST:CONTAINER[/PROTO] like 8080:80/tcp, got "80/icmp"`, 3},
		{"docker env", "docker", "docker:\n  container: web\n  env: ['=x']", `docker.env[0]: want KEY=VALUE or KEY, got "=x"`, 3},
		{"docker env item", "docker", "docker:\n  container: web\n  env: [{A: b}]", "docker.env[0] must be a string", 3},
		{"docker image", "docker", "docker:\n  image: 'Nginx:latest'", `docker.image: invalid image reference "Nginx:latest"`, 2},
		{"docker log", "docker", "docker:\n  container: web\n  log: '*'", "docker.log: invalid regexp \"*\": missing argument to repetition operator: `*`", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec, err := Compile(tt.kind, []byte(tt.block))
			if err == nil {
				t.Fatalf("Compile succeeded with %#v, want error %q", spec, tt.msg)
			}
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is not a *CompileError", err, err)
			}
			if ce.Msg != tt.msg || ce.Line != tt.line {
				t.Errorf("got line %d %q\nwant line %d %q", ce.Line, ce.Msg, tt.line, tt.msg)
			}
		})
	}
}

func TestCompileShapes(t *testing.T) {
	t.Parallel()
	exit0 := 0
	tests := []struct {
		name  string
		kind  string
		block string
		check func(t *testing.T, s *Spec)
	}{
		{"common keys are ignored", "command", "id: marker\ntitle: The marker\nhint: touch it\ntimeout: 30s\nbefore: pass\ncommand:\n  run: test -f marker\n  stdout: ^ok\n",
			func(t *testing.T, s *Spec) {
				if s.Kind != "command" || s.Command.Run != "test -f marker" || s.Command.Stdout.String() != "^ok" {
					t.Errorf("got %+v", s.Command)
				}
			}},
		{"kube defaults", "kube", "kube:\n  resource: deployments/web\n  expect:\n    - path: .status.readyReplicas\n      equals: 3\n",
			func(t *testing.T, s *Spec) {
				k := s.Kube
				want := Expectation{Path: ".status.readyReplicas", Op: "equals", Value: float64(3)}
				if k.Type != "deployments" || k.Name != "web" || k.Namespace != "default" || len(k.Expect) != 1 || !reflect.DeepEqual(k.Expect[0], want) {
					t.Errorf("got %+v", k)
				}
			}},
		{"kube list", "kube", "kube:\n  resource: pods\n  selector: app=web\n  namespace: shop\n  count: {min: 2}\n",
			func(t *testing.T, s *Spec) {
				k := s.Kube
				if k.Type != "pods" || k.Name != "" || k.Selector != "app=web" || k.Namespace != "shop" || *k.Count != (Range{Min: 2, Max: -1}) {
					t.Errorf("got %+v", k)
				}
			}},
		{"pods", "pods", "pods:\n  selector: app=web\n  count: 3\n  phase: running\n  ready: true\n  restarts: {lte: 2}\n",
			func(t *testing.T, s *Spec) {
				p := s.Pods
				if p.Phase != "Running" || *p.Ready != true || *p.Count != (Range{Min: 3, Max: 3}) || *p.Restarts != (Range{Min: 0, Max: 2}) {
					t.Errorf("got %+v", p)
				}
			}},
		{"rollout short names", "rollout", "rollout:\n  resource: sts/db\n  image: postgres:16\n  revision: 2\n",
			func(t *testing.T, s *Spec) {
				r := s.Rollout
				if r.Kind != "statefulset" || r.Name != "db" || r.Image != "postgres:16" || r.Revision != 2 || r.Namespace != "default" {
					t.Errorf("got %+v", r)
				}
			}},
		{"http defaults", "http", "http:\n  service: web\n  port: 80\n",
			func(t *testing.T, s *Spec) {
				h := s.HTTP
				if h.Service != "web" || h.Port != "80" || h.Path != "/" || h.Status != 0 || h.Body != nil || h.Namespace != "default" {
					t.Errorf("got %+v", h)
				}
			}},
		{"docker container", "docker", "docker:\n  container: web\n  state: exited\n  exitCode: 0\n  ports: ['127.0.0.1:8080:80', 53/udp]\n  mounts: [/data]\n  env: [A=b]\n  log: ready\n",
			func(t *testing.T, s *Spec) {
				d := s.Docker
				wantPorts := []PortSpec{
					{Text: "127.0.0.1:8080:80", HostIP: "127.0.0.1", HostPort: "8080", ContainerPort: "80", Proto: "tcp"},
					{Text: "53/udp", ContainerPort: "53", Proto: "udp"},
				}
				if d.Container != "web" || d.State != "exited" || *d.ExitCode != exit0 || !reflect.DeepEqual(d.Ports, wantPorts) ||
					!reflect.DeepEqual(d.Mounts, []string{"/data"}) || !reflect.DeepEqual(d.Env, []string{"A=b"}) || d.Log.String() != "ready" {
					t.Errorf("got %+v", d)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := Compile(tt.kind, []byte(tt.block))
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			s, ok := v.(*Spec)
			if !ok {
				t.Fatalf("Compile returned %T, want *Spec", v)
			}
			tt.check(t, s)
		})
	}
}
