package checker

import "testing"

func TestPods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		block  string
		passed bool
		msg    string
	}{
		{"image pull failure is explained", "pods: {selector: app=web, ready: true}", false,
			"2 of 3 pods ready; web-7d9c-x2k4p: ImagePullBackOff (image kubelab/helo:v1 not found)"},
		{"count that is not met", "pods: {selector: app=web, count: 3, phase: Running, ready: true}", false,
			"2 of 3 pods Running and ready, expected 3; web-7d9c-x2k4p: ImagePullBackOff (image kubelab/helo:v1 not found)"},
		{"count that is met", "pods: {selector: app=web, count: {min: 2}, ready: true}", true,
			"2 of 3 pods ready"},
		{"count only", "pods: {selector: app=web, count: 3}", true,
			"3 pods match app=web in namespace default"},
		{"count only, not met", "pods: {selector: app=web, count: 4}", false,
			"3 pods match app=web in namespace default, expected 4"},
		{"crash loop", "pods: {selector: app=worker, ready: true}", false,
			"0 of 1 pods ready; worker-1: CrashLoopBackOff (exited with code 1, 4 restarts)"},
		{"not scheduled", "pods: {selector: app=big, phase: Running}", false,
			"0 of 1 pods Running; big-1: not scheduled: 0/1 nodes are available: 1 Insufficient memory."},
		{"readiness probe", "pods: {selector: app=probe, ready: true}", false,
			"0 of 1 pods ready; probe-1: running but not ready: Readiness probe failed: HTTP probe failed with statuscode: 503"},
		{"one of several containers", "pods: {selector: app=multi, ready: true}", false,
			`0 of 1 pods ready; multi-1: container app: CreateContainerConfigError (configmap "app-config" not found)`},
		{"killed container", "pods: {selector: app=agent, ready: true}", false,
			"1 of 2 pods ready; agent-b: exited with code 137 (OOMKilled)"},
		{"completed pod", "pods: {selector: app=job, phase: Succeeded}", true,
			"1 of 1 pods Succeeded"},
		{"phase mismatch without a problem", "pods: {selector: app=job, phase: Running}", false,
			"0 of 1 pods Running; job-1: is Succeeded, expected Running"},
		{"restarts", "pods: {selector: app=web, restarts: {lte: 0}}", false,
			"2 of 3 pods with no restarts; web-5f6b-q9z7r: restarted 1 time, expected no restarts"},
		{"restarts with a diagnosis", "pods: {selector: app=worker, restarts: {lte: 2}}", false,
			"0 of 1 pods with at most 2 restarts; worker-1: restarted 4 times, expected at most 2 restarts: CrashLoopBackOff (exited with code 1, 4 restarts)"},
		{"restarts at least", "pods: {selector: app=worker, restarts: {gte: 1}}", true,
			"1 of 1 pods with at least 1 restart"},
		{"no pods", "pods: {selector: app=none}", false,
			"no pods match app=none in namespace default"},
		{"no pods wanted", "pods: {selector: app=none, count: 0}", true,
			"no pods match app=none in namespace default"},
		{"named pod", "pods: {name: web-7d9c-x2k4p, ready: true}", false,
			"pod web-7d9c-x2k4p is not ready: ImagePullBackOff (image kubelab/helo:v1 not found)"},
		{"named pod phase", "pods: {name: big-1, phase: Running}", false,
			"pod big-1 is Pending, expected Running: not scheduled: 0/1 nodes are available: 1 Insufficient memory."},
		{"named pod passes", "pods: {name: web-5f6b-h8m2q, phase: Running, ready: true}", true,
			"pod web-5f6b-h8m2q is Running and ready"},
		{"named pod missing", "pods: {name: web}", false,
			"no pod named web in namespace default (found: agent-a, agent-b, big-1, job-1, multi-1, probe-1, web-5f6b-h8m2q, web-5f6b-old00, web-5f6b-q9z7r, web-7d9c-x2k4p and 1 more)"},
		{"named pod in an empty namespace", "pods: {name: web, namespace: tools}", false,
			"no pod named web in namespace tools (found none)"},
	}
	kc := fixture(t, "testdata/cluster.yaml")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := evalBlock(t, testEvaluator(kc), &fakeTarget{}, "pods", tt.block)
			wantResult(t, got, tt.passed, tt.msg)
		})
	}
}
