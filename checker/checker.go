package checker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// ErrUnavailable is what a Target returns when the sandbox lacks what a check
// needs (no cluster, no Docker engine). A check that meets it fails at once,
// without waiting for its timeout, since waiting cannot change the answer.
var ErrUnavailable = errors.New("not available in this sandbox")

// Target is what a check runs against. A learner's sandbox satisfies it
// through a small adapter in the server; tests use hand-written fakes. Any
// method may return ErrUnavailable (possibly wrapped).
type Target interface {
	// Run runs script with bash -c in the sandbox and waits for it. A
	// non-zero exit is reported in exitCode, not as an error.
	Run(ctx context.Context, script string) (stdout, stderr []byte, exitCode int, err error)
	// KubeConfig is a client configuration for the sandbox's cluster. The
	// checker copies it and never writes through it.
	KubeConfig(ctx context.Context) (*rest.Config, error)
	// DockerHost is the address of the sandbox's Docker engine, such as
	// unix:///run/docker.sock or tcp://10.0.0.2:2375.
	DockerHost(ctx context.Context) (string, error)
}

// Spec is one compiled check: exactly one of the kind fields is set. Compile
// builds it from a check block; it is immutable afterwards and safe to
// evaluate from many goroutines at once.
type Spec struct {
	Kind    string // command, kube, pods, rollout, http or docker
	Command *CommandSpec
	Kube    *KubeSpec
	Pods    *PodsSpec
	Rollout *RolloutSpec
	HTTP    *HTTPSpec
	Docker  *DockerSpec
}

// Check is a compiled check ready to evaluate.
type Check struct {
	ID, Title string
	// Timeout is how long to wait for the sandbox to converge: the check is
	// retried about every second until it passes or the timeout ends. Zero
	// evaluates once.
	Timeout time.Duration
	Spec    *Spec
}

// Result is the outcome of one check or quiz.
type Result struct {
	ID, Title string
	Passed    bool
	// Message is a sentence for the learner: on a pass a short
	// confirmation, on a failure what is still wrong.
	Message string
	// Waited is how long the evaluation took, retries included.
	Waited time.Duration
	// Err is set when the check could not be evaluated for a reason that is
	// not the learner's doing (the cluster did not answer, a broken spec).
	// It is for the server's log; Message already says it in words.
	Err error `json:"-"`
}

// Defaults of the evaluation loop.
const (
	defaultPoll       = time.Second      // between attempts while waiting
	defaultAttemptMax = 10 * time.Second // one attempt of a check without a timeout
	maxConcurrent     = 8                // checks EvaluateAll runs at once
)

// Evaluate runs one compiled check against t. With a timeout it retries about
// every second until the check passes or the timeout ends, and reports the
// last meaningful failure; a zero timeout evaluates once (each attempt is
// still bounded, by 10 s). It never panics on a nil spec; it fails instead.
func Evaluate(ctx context.Context, t Target, c Check) Result {
	return newEvaluator().evaluate(ctx, t, c)
}

// EvaluateAll evaluates checks concurrently and returns their results in
// input order.
func EvaluateAll(ctx context.Context, t Target, cs []Check) []Result {
	return newEvaluator().evaluateAll(ctx, t, cs)
}

// evaluator holds the knobs of the evaluation loop; tests shorten them.
type evaluator struct {
	poll       time.Duration
	attemptMax time.Duration
	// kube gets the Kubernetes clients for the target's config. The
	// default is the shared cache of clients per cluster; tests swap in
	// their own cache or fakes.
	kube func(cfg *rest.Config) (*kubeClients, error)
}

func newEvaluator() *evaluator {
	return &evaluator{poll: defaultPoll, attemptMax: defaultAttemptMax, kube: clusterClients.clients}
}

func (e *evaluator) evaluateAll(ctx context.Context, t Target, cs []Check) []Result {
	t = &stepTarget{Target: t}
	results := make([]Result, len(cs))
	sem := make(chan struct{}, maxConcurrent)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = e.evaluate(ctx, t, c)
		}()
	}
	wg.Wait()
	return results
}

// stepTarget asks the target for its cluster's config once for all the
// checks of a step, rather than once per check: a sandbox may have to run
// commands to produce it. Only a config is kept, never an error, so a
// check that retries asks again.
type stepTarget struct {
	Target
	mu  sync.Mutex
	cfg *rest.Config
}

// KubeConfig returns the config an earlier check of the step got, or asks
// the target. Checks that ask at once wait for the first answer.
func (s *stepTarget) KubeConfig(ctx context.Context) (*rest.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg != nil {
		return s.cfg, nil
	}
	cfg, err := s.Target.KubeConfig(ctx)
	if err == nil && cfg != nil {
		s.cfg = cfg
	}
	return cfg, err
}

// outcome is what one attempt of a check found.
type outcome struct {
	passed bool
	msg    string
	err    error // not the learner's doing; for the log
	// final means retrying cannot help (ErrUnavailable, a broken spec).
	final bool
	// interrupted means the attempt was cut short by the deadline, so its
	// message says less than an earlier attempt's.
	interrupted bool
}

func pass(format string, args ...any) outcome {
	return outcome{passed: true, msg: fmt.Sprintf(format, args...)}
}

func fail(format string, args ...any) outcome {
	return outcome{msg: fmt.Sprintf(format, args...)}
}

// broken is a failure that is not the learner's doing.
func broken(err error, format string, args ...any) outcome {
	return outcome{msg: fmt.Sprintf(format, args...), err: err}
}

func (e *evaluator) evaluate(ctx context.Context, t Target, c Check) Result {
	start := time.Now()
	res := Result{ID: c.ID, Title: c.Title}
	if c.Spec == nil {
		res.Message = "this check cannot be evaluated: it was not compiled"
		res.Err = fmt.Errorf("check %q has no compiled spec", c.ID)
		return res
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	s := &session{e: e, t: t, timeout: c.Timeout}
	defer s.close()

	var last outcome
	have := false
	for {
		o := s.attempt(ctx, c.Spec)
		if !have || !o.interrupted {
			last, have = o, true
		}
		if o.passed || o.final || c.Timeout <= 0 || ctx.Err() != nil {
			break
		}
		timer := time.NewTimer(e.poll)
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		timer.Stop()
		if ctx.Err() != nil {
			break
		}
	}
	res.Passed, res.Message, res.Err = last.passed, last.msg, last.err
	res.Waited = time.Since(start)
	return res
}

// session is one evaluation of one check: it keeps its clients between
// attempts (the Kubernetes ones come from the evaluator's cache and outlive
// it; the Docker one is its own). Attempts run one at a time, so it needs
// no lock.
type session struct {
	e       *evaluator
	t       Target
	timeout time.Duration
	kube    *kubeClients
	docker  *dockerClient
}

func (s *session) close() {
	if s.docker != nil {
		s.docker.close()
	}
}

// attempt evaluates spec once.
func (s *session) attempt(ctx context.Context, spec *Spec) outcome {
	var o outcome
	switch {
	case spec.Command != nil:
		o = s.command(ctx, spec.Command)
	default:
		actx, cancel := context.WithTimeout(ctx, s.e.attemptMax)
		defer cancel()
		switch {
		case spec.Kube != nil:
			o = s.kubeCheck(actx, spec.Kube)
		case spec.Pods != nil:
			o = s.pods(actx, spec.Pods)
		case spec.Rollout != nil:
			o = s.rollout(actx, spec.Rollout)
		case spec.HTTP != nil:
			o = s.http(actx, spec.HTTP)
		case spec.Docker != nil:
			o = s.dockerCheck(actx, spec.Docker)
		default:
			return outcome{msg: "this check cannot be evaluated: it has no kind",
				err: fmt.Errorf("spec of kind %q has no body", spec.Kind), final: true}
		}
		// A failure to read the sandbox because time ran out says less than
		// what an earlier attempt found; a real finding stands.
		if !o.passed && o.err != nil && actx.Err() != nil {
			o.interrupted = true
		}
	}
	return o
}

// unavailable turns an error from the Target into an outcome: a final one
// for ErrUnavailable, a retryable one otherwise.
func unavailable(err error, what string) outcome {
	if errors.Is(err, ErrUnavailable) {
		return outcome{msg: "this check needs " + what + ", and this sandbox has none", err: err, final: true}
	}
	return broken(err, "could not reach %s; it may still be starting", what)
}
