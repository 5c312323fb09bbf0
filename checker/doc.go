// Package checker turns check blocks into results: it compiles the YAML of a
// lesson's check blocks (Compile), evaluates them against a learner's
// sandbox (Evaluate, EvaluateAll) and grades quizzes (GradeQuiz). It reads
// the real state of the sandbox, never writes to it (every client it builds
// refuses anything but GET and HEAD), and explains in a sentence what is
// still wrong. It imports nothing else of kubelab: a sandbox reaches it
// through the small Target interface.
//
// This comment is the reference lesson authors read.
//
// # Common keys
//
// Every check block has an id and a title, and may have a hint, a timeout
// ("60s": retry about every second until the check passes, for a cluster
// that takes time to converge; without one the check is evaluated once) and
// before: pass (the check may already pass before the solution runs). The
// lessons package reads those; one more key names the kind and holds its
// body. Unknown keys are errors, at load time, with the line.
//
// # command
//
// Runs a bash script in the sandbox's workstation. Exit 0 passes; stdout is
// an optional regexp that the whole standard output must match. A run may
// take 10 s, or the whole timeout when the check has one.
//
//	id: marker
//	title: The marker file exists
//	command:
//	  run: test -f "$HOME/marker"
//	  stdout: "^ok"          # optional
//
// Messages: "command exited with code 1: <first line of stderr or stdout>",
// "output did not match ^ok: got \"nope\"".
//
// # kube
//
// Reads any object, built-in or custom. resource is TYPE/NAME; the type may
// be plural, singular, a short name or a kind, optionally with its group
// (deployments/web, deploy/web, deployment.apps/web, notebooks/my-nb).
// namespace defaults to "default" and is ignored for cluster-scoped types.
//
//	id: web-ready
//	title: Deployment web has 3 ready replicas
//	kube:
//	  resource: deployments/web
//	  namespace: default
//	  expect:
//	    - path: .status.readyReplicas     # JSONPath, braces optional
//	      equals: 3
//	    - path: "{.spec.template.spec.containers[*].image}"
//	      contains: kubelab/hello:v2
//	timeout: 60s
//
// Each expectation has a path and exactly one operator:
//
//	equals: V     the value found equals V (numbers compare as numbers; a
//	              string compares with the text of a number or bool)
//	matches: RE   every value found is a scalar matching the regexp RE
//	exists: B     true: the path finds a non-null value; false: it finds nothing
//	contains: V   a string found contains V; a list found has an element equal
//	              to V (a map V matches elements having those keys and values);
//	              a map found has the key V, or the keys and values of a map V
//	gte: N, lte: N  a number found is at least / at most N; numbers may be
//	              Kubernetes quantities on either side ("500m", "1Gi")
//	len: N        the list, map or string found has length N
//
// A path that selects several values ([*], filters) is compared as the list
// of them. Without a name, resource is a bare type and selector (optional)
// picks objects; count (N, or {min: N, max: N}) is how many must meet the
// expectations; without count, at least one must exist and all must meet
// them:
//
//	kube:
//	  resource: configmaps
//	  selector: app=web
//	  count: {min: 1}
//
// absent: true passes when the object (or every match of the selector) is
// gone:
//
//	kube:
//	  resource: pod/debug
//	  absent: true
//
// Messages: "no deployment named web in namespace default (found: api,
// db)", "deployment/web .spec.replicas: expected 3, found 2",
// "deployment/web .status.readyReplicas: expected 3, found nothing".
//
// # pods
//
// The pods a label selector matches (or one pod, with name instead of
// selector): how many, phase, readiness, restarts. count is N or
// {min: N, max: N} and counts the pods that meet the other conditions;
// without count, at least one pod must exist and all must meet them.
// Terminating pods are ignored.
//
//	id: web-pods
//	title: Three web pods are ready
//	pods:
//	  selector: app=web
//	  namespace: default
//	  count: 3
//	  phase: Running                  # Pending, Running, Succeeded, Failed
//	  ready: true
//	  restarts: {lte: 2}              # lte and/or gte, over all containers
//	timeout: 90s
//
// A failure names the first pod at fault with its waiting reason and latest
// Warning event: "2 of 3 pods Running and ready, expected 3; web-7d9c:
// ImagePullBackOff (image kubelab/helo:v1 not found)".
//
// # rollout
//
// A Deployment, StatefulSet or DaemonSet finished rolling out, decided as
// `kubectl rollout status` does (observed generation, updated, available
// and old replicas, progress deadline). image optionally names the image
// the pod template must use (of container, or of the first container);
// revision optionally the revision it must be at (the
// deployment.kubernetes.io/revision annotation; for StatefulSets and
// DaemonSets the newest ControllerRevision).
//
//	id: rolled-out
//	title: web runs v2
//	rollout:
//	  resource: deployment/web        # or statefulset/NAME, daemonset/NAME (deploy, sts, ds)
//	  namespace: default
//	  image: kubelab/hello:v2         # optional
//	  container: web                  # optional, with image
//	  revision: 2                     # optional
//	timeout: 120s
//
// Messages: "deployment/web: 1 of 3 updated replicas available; web-7d9c:
// ImagePullBackOff (image kubelab/hello:v3 not found)", "deployment/web
// uses image kubelab/hello:v1, expected kubelab/hello:v2".
//
// # http
//
// A GET to a Service through the API server's service proxy
// (/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH), so it works
// without exposing anything. port is a number or a port name, optional when
// the service has one port; status defaults to any 2xx; body is a regexp
// the body must match.
//
//	id: web-answers
//	title: The web service answers with v2
//	http:
//	  service: web
//	  namespace: default
//	  port: 80
//	  path: /
//	  status: 200
//	  body: "hello v2"
//	  scheme: http                    # or https
//	timeout: 60s
//
// Messages: "no service named web in namespace default (found: api)",
// "service web (port 80) answered GET / with 503, expected 200", "service
// web (port 80) has no ready endpoints: no ready pod matches its selector
// app=web".
//
// # docker
//
// The workstation's Docker engine, read through the Engine API. Exactly one
// of container (a name), label ("key=value" or "key": every container
// with it), image, volume or network. absent: true passes when the object
// is gone. For containers:
//
//	id: web-container
//	title: web runs and publishes port 8080
//	docker:
//	  container: web
//	  state: running                  # created, running, paused, restarting, exited, dead
//	  ports: ["8080:80/tcp"]          # HOST:CONTAINER[/PROTO], or CONTAINER[/PROTO] for any host port
//	  mounts: [/data, "cache:/cache"] # a destination, a volume name, or SOURCE:/DEST
//	  env: ["MODE=prod", "TOKEN"]     # KEY=VALUE, or KEY to be set at all
//	  log: "listening on :80"         # a line of its logs matches this regexp
//
//	docker:
//	  container: job
//	  exitCode: 0                     # it has exited with this code
//
//	docker:
//	  image: kubelab/hello:v2         # "nginx" means docker.io/library/nginx:latest
//	  absent: true
//
//	docker:
//	  volume: data
//
//	docker:
//	  network: appnet
//
// Messages: "container web is exited (code 137), expected running",
// "container web publishes 80/tcp on host port 8081, expected 8080", "no
// container named web (found: api, db)", "image kubelab/hello:v2 not found
// (found: kubelab/hello:v1)".
//
// # quiz
//
// Quizzes are not compiled: the lessons package reads question, options
// and explain, and the server grades answers with GradeQuiz, so the correct
// options never reach the browser.
//
//	id: store
//	question: Which component stores the cluster's state?
//	options:
//	  - text: etcd
//	    correct: true
//	  - text: kubelet
//	explain: etcd is the key-value store behind the API server.
package checker
