package checker

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

func TestRollout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		block  string
		passed bool
		msg    string
	}{
		{"stuck on a bad image", "rollout: {resource: deployment/web}", false,
			"deployment/web: 1 of 3 replicas updated; web-7d9c-x2k4p: ImagePullBackOff (image kubelab/helo:v1 not found)"},
		{"rolled out", "rollout: {resource: deploy/api}", true,
			"deployment/api rolled out: 2 of 2 replicas available"},
		{"rolled out with the image", "rollout: {resource: deployments/api, image: kubelab/api:v2}", true,
			"deployment/api rolled out: 2 of 2 replicas available with image kubelab/api:v2"},
		{"wrong image", "rollout: {resource: deployment/api, image: kubelab/api:v3}", false,
			"deployment/api uses image kubelab/api:v2, expected kubelab/api:v3"},
		{"named container", "rollout: {resource: deployment/web, image: kubelab/hello:v2, container: sidecar}", false,
			"deployment/web uses image busybox:1.36, expected kubelab/hello:v2"},
		{"missing container", "rollout: {resource: deployment/web, image: kubelab/hello:v2, container: nope}", false,
			"deployment/web has no container named nope (containers: sidecar, web)"},
		{"image names are normalized; new spec not seen yet", "rollout: {resource: deployment/fresh, image: 'docker.io/library/nginx:latest'}", false,
			"deployment/fresh: waiting for the controller to see the new spec"},
		{"old replicas", "rollout: {resource: deployment/db}", false,
			"deployment/db: 1 old replica pending termination"},
		{"progress deadline", "rollout: {resource: deployment/stuck}", false,
			"deployment/stuck exceeded its progress deadline"},
		{"revision", "rollout: {resource: deployment/api, revision: 1}", true,
			"deployment/api rolled out: 2 of 2 replicas available"},
		{"wrong revision", "rollout: {resource: deployment/api, revision: 2}", false,
			"deployment/api is at revision 1, expected 2"},
		{"no revision", "rollout: {resource: deployment/db, revision: 1}", false,
			"deployment/db has no revision yet, expected revision 1"},
		{"statefulset", "rollout: {resource: sts/pg, revision: 2}", true,
			"statefulset/pg rolled out: 3 of 3 replicas ready"},
		{"statefulset revision", "rollout: {resource: statefulset/pg, revision: 3}", false,
			"statefulset/pg is at revision 2, expected 3"},
		{"statefulset updating", "rollout: {resource: statefulset/queue}", false,
			"statefulset/queue: 1 of 3 replicas updated to revision queue-22bb"},
		{"daemonset", "rollout: {resource: ds/agent}", false,
			"daemonset/agent: 1 of 2 updated pods available; agent-b: exited with code 137 (OOMKilled)"},
		{"missing", "rollout: {resource: deployment/nope}", false,
			"no deployment named nope in namespace default (found: api, db, fresh, stuck, web)"},
		{"missing in an empty namespace", "rollout: {resource: statefulset/nope, namespace: tools}", false,
			"no statefulset named nope in namespace tools (found none)"},
	}
	kc := fixture(t, "testdata/cluster.yaml")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := evalBlock(t, testEvaluator(kc), &fakeTarget{}, "rollout", tt.block)
			wantResult(t, got, tt.passed, tt.msg)
		})
	}
}

// The rules of kubectl rollout status that the fixture does not show.
func TestRolloutStatusRules(t *testing.T) {
	t.Parallel()
	three, one := int32(3), int32(1)
	sts := func(mod func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
		s := &appsv1.StatefulSet{}
		s.Generation = 1
		s.Spec.Replicas = &three
		s.Spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		s.Status = appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 3,
			CurrentRevision: "r1", UpdateRevision: "r1"}
		mod(s)
		return s
	}
	tests := []struct {
		name string
		done bool
		msg  string
		got  func() (bool, string)
	}{
		{"statefulset on delete", false, "statefulset/db uses the OnDelete update strategy; a rollout can only be followed with RollingUpdate",
			func() (bool, string) {
				return statefulSetStatus("statefulset/db", sts(func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType }))
			}},
		{"statefulset never observed", false, "statefulset/db: waiting for the controller to see the new spec",
			func() (bool, string) {
				return statefulSetStatus("statefulset/db", sts(func(s *appsv1.StatefulSet) { s.Status.ObservedGeneration = 0 }))
			}},
		{"statefulset not ready", false, "statefulset/db: 1 of 3 replicas ready",
			func() (bool, string) {
				return statefulSetStatus("statefulset/db", sts(func(s *appsv1.StatefulSet) { s.Status.ReadyReplicas = 1 }))
			}},
		{"statefulset partition pending", false, "statefulset/db: 1 of 2 replicas updated (partition 1)",
			func() (bool, string) {
				return statefulSetStatus("statefulset/db", sts(func(s *appsv1.StatefulSet) {
					s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: &one}
					s.Status.UpdatedReplicas = 1
				}))
			}},
		{"statefulset partition done", true, "statefulset/db rolled out to its partition: 2 of 2 replicas updated",
			func() (bool, string) {
				return statefulSetStatus("statefulset/db", sts(func(s *appsv1.StatefulSet) {
					s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: &one}
					s.Status.UpdatedReplicas = 2
				}))
			}},
		{"daemonset on delete", false, "daemonset/agent uses the OnDelete update strategy; a rollout can only be followed with RollingUpdate",
			func() (bool, string) {
				d := &appsv1.DaemonSet{}
				d.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
				return daemonSetStatus("daemonset/agent", d)
			}},
		{"daemonset not updated", false, "daemonset/agent: 1 of 3 pods updated",
			func() (bool, string) {
				d := &appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 1}}
				return daemonSetStatus("daemonset/agent", d)
			}},
		{"daemonset done", true, "daemonset/agent rolled out: 3 of 3 pods available",
			func() (bool, string) {
				d := &appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}}
				return daemonSetStatus("daemonset/agent", d)
			}},
		{"deployment default replicas", false, "deployment/web: 0 of 1 updated replicas available",
			func() (bool, string) {
				d := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1}}
				return deploymentStatus("deployment/web", d)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			done, msg := tt.got()
			if done != tt.done || msg != tt.msg {
				t.Errorf("got %v %q, want %v %q", done, msg, tt.done, tt.msg)
			}
		})
	}
}
