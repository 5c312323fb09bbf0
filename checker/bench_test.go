package checker

import (
	"testing"

	"k8s.io/client-go/rest"
)

// BenchmarkEvaluateKube measures one step of three kube checks against the
// fake API server (plain HTTP on loopback, five group versions: a real
// cluster has TLS and about twenty-five, so discovery costs more there):
//
//	uncached  every check builds its own clients and reads discovery, as
//	          the checker did before it kept clients per cluster
//	cold      a new cache for each step: the three checks share one set of
//	          clients and one read of discovery
//	warm      the cache Evaluate uses, after the first step
//
// go test -run '^$' -bench EvaluateKube -benchmem ./checker/
func BenchmarkEvaluateKube(b *testing.B) {
	api := newFakeAPIServer(b, "testdata/cluster.yaml", nil)
	// QPS -1: no client-side rate limit. Warm clients share theirs across
	// steps, and a benchmark that runs thousands of steps a second would
	// measure the limiter's waits instead of the checker.
	target := &fakeTarget{kubeConfig: &rest.Config{Host: api.srv.URL, QPS: -1}}
	cs := threeKubeChecks(b)
	warm := newKubeCache(newKubeClients, clientIdle)
	modes := []struct {
		name string
		eval func() *evaluator
	}{
		{"uncached", func() *evaluator {
			return &evaluator{poll: defaultPoll, attemptMax: defaultAttemptMax, kube: newKubeClients}
		}},
		{"cold", func() *evaluator { return cachedEvaluator(newKubeCache(newKubeClients, clientIdle)) }},
		{"warm", func() *evaluator { return cachedEvaluator(warm) }},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			wantAllPassed(b, m.eval().evaluateAll(b.Context(), target, cs)) // fills the warm cache
			requests, discovery := api.requests(), api.discoveryReads()
			b.ReportAllocs()
			for b.Loop() {
				wantAllPassed(b, m.eval().evaluateAll(b.Context(), target, cs))
			}
			b.ReportMetric(float64(api.requests()-requests)/float64(b.N), "requests/op")
			b.ReportMetric(float64(api.discoveryReads()-discovery)/float64(b.N), "discovery/op")
		})
	}
}
