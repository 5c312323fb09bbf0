package sandbox

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"kubelab/lessons"
)

func TestSpecCoversAddonsAndResources(t *testing.T) {
	t.Parallel()
	kf := []string{AddonKubeflowTraining}
	base := Spec{Kind: KindKubernetes, Images: []string{"a"}}
	for _, tc := range []struct {
		name       string
		have, need Spec
		want       bool
	}{
		{"no addons needed", base, Spec{Kind: KindKubernetes}, true},
		{"addon missing", base, Spec{Kind: KindKubernetes, Addons: kf}, false},
		{"addon present", Spec{Kind: KindKubernetes, Addons: kf}, Spec{Kind: KindKubernetes, Addons: kf}, true},
		{"addon present, none needed", Spec{Kind: KindKubernetes, Addons: kf}, Spec{Kind: KindDocker}, true},
		{"more memory needed", Spec{Kind: KindKubernetes, Resources: Resources{Memory: 1 << 30}}, Spec{Kind: KindKubernetes, Resources: Resources{Memory: 2 << 30}}, false},
		{"more CPUs needed", Spec{Kind: KindKubernetes, Resources: Resources{CPUs: 1}}, Spec{Kind: KindKubernetes, Resources: Resources{CPUs: 2}}, false},
		{"less needed", Spec{Kind: KindKubernetes, Resources: Resources{Memory: 2 << 30, CPUs: 2}}, Spec{Kind: KindKubernetes, Resources: Resources{Memory: 1 << 30, CPUs: 1}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.have.Covers(tc.need); got != tc.want {
				t.Errorf("%+v.Covers(%+v) = %v, want %v", tc.have, tc.need, got, tc.want)
			}
		})
	}
}

func TestSpecMergeAddonsAndResources(t *testing.T) {
	t.Parallel()
	a := Spec{Owner: "o", Kind: KindDocker, Images: []string{"x"}, Resources: Resources{Memory: 3 << 30, CPUs: 1}}
	b := Spec{Owner: "p", Kind: KindKubernetes, Addons: []string{AddonKubeflowTraining}, Resources: Resources{Memory: 1 << 30, CPUs: 2}}
	m := a.Merge(b)
	if m.Owner != "o" || m.Kind != KindKubernetes {
		t.Errorf("merge = %+v, want owner o and kind kubernetes", m)
	}
	if !slices.Equal(m.Addons, []string{AddonKubeflowTraining}) || !slices.Equal(m.Images, []string{"x"}) {
		t.Errorf("merge addons %v images %v, want [%s] [x]", m.Addons, m.Images, AddonKubeflowTraining)
	}
	if m.Resources != (Resources{Memory: 3 << 30, CPUs: 2}) {
		t.Errorf("merge resources = %+v, want the larger of each", m.Resources)
	}
	if !m.Covers(a) || !m.Covers(b) {
		t.Errorf("merge %+v does not cover both specs", m)
	}
	// Merging must not alias the receiver's slices.
	m2 := b.Merge(Spec{Addons: []string{"other"}})
	if len(b.Addons) != 1 || len(m2.Addons) != 2 {
		t.Errorf("merge changed its receiver: %v, merged %v", b.Addons, m2.Addons)
	}
}

func TestFit(t *testing.T) {
	t.Parallel()
	const gi = 1 << 30
	for _, tc := range []struct {
		name       string
		need, have Resources
		msg        []string // "" parts the error must hold; nil: fits
	}{
		{"nothing asked", Resources{}, Resources{Memory: gi, CPUs: 1}, nil},
		{"fits", Resources{Memory: 2 * gi, CPUs: 2}, Resources{Memory: 2 * gi, CPUs: 2}, nil},
		{"limits unknown", Resources{Memory: 64 * gi, CPUs: 64}, Resources{}, nil},
		{"memory short", Resources{Memory: 3 * gi}, Resources{Memory: 2 * gi, CPUs: 2}, []string{"3Gi of memory (it has 2Gi)"}},
		{"both short", Resources{Memory: 3 * gi / 2, CPUs: 4}, Resources{Memory: gi, CPUs: 2}, []string{"1.5Gi of memory (it has 1Gi)", "4 CPUs (it has 2)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Fit(tc.need, tc.have)
			if tc.msg == nil {
				if err != nil {
					t.Fatalf("Fit(%+v, %+v) = %v, want nil", tc.need, tc.have, err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Fit(%+v, %+v) = %v, want an error wrapping ErrUnsupported", tc.need, tc.have, err)
			}
			for _, part := range tc.msg {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("Fit error %q does not say %q", err, part)
				}
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{3 << 30: "3Gi", 3 << 29: "1.5Gi", 512 << 20: "512Mi", 100: "100 bytes"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSpecMergeCap(t *testing.T) {
	t.Parallel()
	a := Spec{Cap: Resources{Memory: 1 << 30}}
	b := Spec{Cap: Resources{Memory: 2 << 30, CPUs: 0.5}}
	if got, want := a.Merge(b).Cap, (Resources{Memory: 1 << 30, CPUs: 0.5}); got != want {
		t.Errorf("Merge cap = %+v, want the lower of each set field %+v", got, want)
	}
	if got := (Spec{}).Merge(Spec{}).Cap; got != (Resources{}) {
		t.Errorf("Merge of no caps = %+v, want none", got)
	}
	if !(Spec{Kind: KindDocker}).Covers(Spec{Kind: KindDocker, Cap: Resources{Memory: 1}}) {
		t.Error("Covers compares caps; it must not")
	}
}

func TestForLesson(t *testing.T) {
	t.Parallel()
	l := &lessons.Lesson{Sandbox: lessons.SandboxKubernetes, Images: []string{"kubelab/pytorch:v1"}, Workers: 1, Addons: []string{AddonKubeflowTraining}}
	l.Resources.Memory, l.Resources.CPUs = 2<<30, 2
	got := ForLesson("ada", l)
	want := Spec{Owner: "ada", Kind: KindKubernetes, Images: l.Images, Workers: 1, Addons: l.Addons, Resources: Resources{Memory: 2 << 30, CPUs: 2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ForLesson = %+v, want %+v", got, want)
	}
}
