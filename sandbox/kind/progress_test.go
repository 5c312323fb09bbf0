package kind

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"kubelab/sandbox"
)

func TestKindProgress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		want sandbox.Progress
		ok   bool
	}{
		{"Creating cluster \"kl-1\" ...\n", sandbox.Progress{Stage: "cluster", Message: "Creating your Kubernetes cluster", Percent: 47}, true},
		{" • Ensuring node image (kubelab/node:v1.34.4) 🖼️  ...\n", sandbox.Progress{Stage: "cluster", Message: "Checking the node image", Percent: 48}, true},
		{" ✓ Ensuring node image (kubelab/node:v1.34.4) 🖼️\n", sandbox.Progress{}, false},
		{" • Preparing nodes 📦 📦  ...\n", sandbox.Progress{Stage: "cluster", Message: "Preparing the cluster's nodes", Percent: 50}, true},
		{" ✓ Preparing nodes 📦 📦\n", sandbox.Progress{Stage: "cluster", Message: "The cluster's nodes are running", Percent: 55}, true},
		{" • Writing configuration 📜  ...\n", sandbox.Progress{Stage: "cluster", Message: "Writing the cluster's configuration", Percent: 60}, true},
		{" • Starting control-plane 🕹️  ...\n", sandbox.Progress{Stage: "cluster", Message: "Starting the control plane", Percent: 65}, true},
		{" ✓ Starting control-plane 🕹️\n", sandbox.Progress{Stage: "cluster", Message: "The control plane is up", Percent: 80}, true},
		{" • Installing CNI 🔌  ...\n", sandbox.Progress{Stage: "cluster", Message: "Installing pod networking", Percent: 83}, true},
		{" • Installing StorageClass 💾  ...\n", sandbox.Progress{Stage: "cluster", Message: "Installing storage", Percent: 85}, true},
		{" • Joining worker nodes 🚜  ...\n", sandbox.Progress{Stage: "cluster", Message: "Joining the worker nodes", Percent: 87}, true},
		{" • Waiting ≤ 3m0s for control-plane = Ready ⏳  ...\n", sandbox.Progress{Stage: "cluster", Message: "Waiting for the cluster to be ready", Percent: 88}, true},
		{" • Ready after 12s 💚\n", sandbox.Progress{Stage: "ready", Message: "The cluster is ready", Percent: 90}, true},
		{" ✗ Starting control-plane 🕹️\n", sandbox.Progress{}, false},
		{" • WARNING: Timed out waiting for Ready ⚠️\n", sandbox.Progress{}, false},
		{"Deleted nodes: [\"kl-1-control-plane\"]", sandbox.Progress{}, false},
		{"", sandbox.Progress{}, false},
	}
	for _, tt := range tests {
		got, ok := kindProgress(tt.line)
		if ok != tt.ok || got != tt.want {
			t.Errorf("kindProgress(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

// kindCreateLog is what kind v0.33 logs at verbosity 0 while it creates a
// cluster with one worker, in order.
var kindCreateLog = []string{
	"Creating cluster \"kl-1\" ...\n",
	" • Ensuring node image (kubelab/node:v1.34.4) 🖼️  ...\n",
	" ✓ Ensuring node image (kubelab/node:v1.34.4) 🖼️\n",
	" • Preparing nodes 📦 📦  ...\n",
	" ✓ Preparing nodes 📦 📦\n",
	" • Writing configuration 📜  ...\n",
	" ✓ Writing configuration 📜\n",
	" • Starting control-plane 🕹️  ...\n",
	" ✓ Starting control-plane 🕹️\n",
	" • Installing CNI 🔌  ...\n",
	" ✓ Installing CNI 🔌\n",
	" • Installing StorageClass 💾  ...\n",
	" ✓ Installing StorageClass 💾\n",
	" • Joining worker nodes 🚜  ...\n",
	" ✓ Joining worker nodes 🚜\n",
	" • Waiting ≤ 3m0s for control-plane = Ready ⏳  ...\n",
	" ✓ Waiting ≤ 3m0s for control-plane = Ready ⏳\n",
	" • Ready after 12s 💚",
}

func TestKindLoggerReportsProgress(t *testing.T) {
	t.Parallel()
	var got []string
	var logs bytes.Buffer
	kl := &kindLogger{
		logger:   slog.New(slog.NewTextHandler(&logs, nil)),
		progress: newReporter(func(p sandbox.Progress) { got = append(got, fmt.Sprintf("%s %d", p.Stage, p.Percent)) }),
	}
	for _, line := range kindCreateLog {
		kl.V(0).Infof("%s", line)
	}
	kl.V(1).Info("Running: docker run ...") // debug: not logged at Info, no progress
	want := []string{"cluster 47", "cluster 48", "cluster 50", "cluster 55", "cluster 60", "cluster 65", "cluster 80", "cluster 83", "cluster 85", "cluster 87", "cluster 88", "ready 90"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("progress = %q, want %q", got, want)
	}
	if kl.gaveUp() {
		t.Errorf("gaveUp() = true after a cluster became Ready")
	}
	if strings.Contains(logs.String(), "Running: docker") {
		t.Errorf("verbosity 1 line logged at Info: %s", logs.String())
	}
	if !strings.Contains(logs.String(), `msg="✓ Starting control-plane 🕹️"`) {
		t.Errorf("kind's lines are not logged: %s", logs.String())
	}
	if kl.V(0).Enabled() != true || kl.V(1).Enabled() != false {
		t.Errorf("Enabled: V(0) %v, V(1) %v; want true, false at Info level", kl.V(0).Enabled(), kl.V(1).Enabled())
	}
}

func TestKindLoggerNotesTimeout(t *testing.T) {
	t.Parallel()
	kl := &kindLogger{logger: slog.New(slog.DiscardHandler)}
	kl.V(0).Info(" ✗ Waiting ≤ 3m0s for control-plane = Ready ⏳\n")
	kl.V(0).Info(" • WARNING: Timed out waiting for Ready ⚠️")
	if !kl.gaveUp() {
		t.Errorf("gaveUp() = false after kind timed out")
	}
}

func TestReporterNeverGoesBack(t *testing.T) {
	t.Parallel()
	var got []string
	r := newReporter(func(p sandbox.Progress) { got = append(got, fmt.Sprintf("%s:%d", p.Message, p.Percent)) })
	for i, pct := range []int{5, 30, 20, 30, 45, 44, 100} {
		r.report("s", fmt.Sprint("m", i), pct)
	}
	// a stage behind the bar (running beside another) keeps its message
	want := []string{"m0:5", "m1:30", "m2:30", "m3:30", "m4:45", "m5:45", "m6:100"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reported %v, want %v", got, want)
	}
	var nilFunc *reporter = newReporter(nil)
	nilFunc.report("s", "m", 1) // must not panic
}

// TestKindLoggerSaysWhenWaitingForReady: the hook createCluster applies
// the learner policies from runs once, when kind starts waiting for Ready
// (after the nodes joined), not on earlier lines.
func TestKindLoggerSaysWhenWaitingForReady(t *testing.T) {
	t.Parallel()
	calls := 0
	kl := &kindLogger{logger: slog.New(slog.DiscardHandler), progress: newReporter(nil), waitingReady: func() { calls++ }}
	kl.V(0).Info(" ✓ Starting control-plane 🕹️")
	kl.V(0).Info(" • Joining worker nodes 🚜  ...")
	if calls != 0 {
		t.Fatalf("called %d times before kind waits for Ready", calls)
	}
	kl.V(0).Info(" • Waiting ≤ 5m0s for control-plane = Ready ⏳  ...")
	kl.V(0).Info(" • Waiting ≤ 5m0s for control-plane = Ready ⏳  ...")
	kl.V(0).Info(" ✓ Waiting ≤ 5m0s for control-plane = Ready ⏳")
	if calls != 1 {
		t.Errorf("called %d times, want once", calls)
	}
}

// A cluster of one node has no node to join: the hook runs as soon as its
// control plane is up, and only once.
func TestKindLoggerSingleNodeAfterControlPlane(t *testing.T) {
	t.Parallel()
	calls := 0
	kl := &kindLogger{logger: slog.New(slog.DiscardHandler), progress: newReporter(nil), waitingReady: func() { calls++ }, singleNode: true}
	kl.V(0).Info(" • Starting control-plane 🕹️  ...")
	if calls != 0 {
		t.Fatalf("called %d times before the control plane is up", calls)
	}
	kl.V(0).Info(" ✓ Starting control-plane 🕹️")
	if calls != 1 {
		t.Fatalf("called %d times once the control plane is up, want 1", calls)
	}
	kl.V(0).Info(" • Installing CNI 🔌  ...")
	kl.V(0).Info(" • Waiting ≤ 5m0s for control-plane = Ready ⏳  ...")
	if calls != 1 {
		t.Errorf("called %d times, want once", calls)
	}
}
