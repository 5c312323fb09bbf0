package lessons

import (
	"reflect"
	"strings"
	"testing"
)

// lessonWith returns a lesson file whose front matter has the given extra
// lines after title (line 2) and sandbox (line 3): the first extra line is
// line 4.
func lessonWith(sandbox string, extra ...string) []byte {
	return []byte("---\ntitle: T\nsandbox: " + sandbox + "\n" + strings.Join(extra, "\n") + "\n---\n\nIntro.\n")
}

func TestParseAddonsAndResources(t *testing.T) {
	t.Parallel()
	src := lessonWith("kubernetes", "addons: [kubeflow-training]", "resources: {memory: 2560Mi, cpus: 1.5}")
	l, err := ParseLesson("k/08-pytorchjob.md", src, Options{CompileCheck: fakeCompiler{}.compile})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l.Addons, []string{"kubeflow-training"}) {
		t.Errorf("addons = %q, want [kubeflow-training]", l.Addons)
	}
	if want := (Resources{Memory: 2560 << 20, CPUs: 1.5}); l.Resources != want {
		t.Errorf("resources = %+v, want %+v", l.Resources, want)
	}
}

func TestParseAddonsAndResourcesProblems(t *testing.T) {
	t.Parallel()
	const f = "k/08-x.md:"
	for _, tc := range []struct {
		name    string
		sandbox string
		extra   []string
		want    []string
	}{
		{"unknown addon", "kubernetes", []string{"addons: [kubeflow-trainer]"}, []string{
			f + `4: front matter: addons: unknown addon "kubeflow-trainer": want kubeflow-training`,
		}},
		{"addon without a cluster", "docker", []string{"addons: [kubeflow-training]"}, []string{
			f + "4: front matter: addons: only a lesson with sandbox kubernetes has a cluster to install addons into",
		}},
		{"addons not a list", "kubernetes", []string{"addons: kubeflow-training"}, []string{
			f + `4: front matter: addons: want a list such as [a, b], got "kubeflow-training"`,
		}},
		{"bad sizes", "kubernetes", []string{"resources:", "  memory: lots", "  cpus: 0", "  disk: 1Gi"}, []string{
			f + `5: front matter: resources: memory "lots": want a size such as 512Mi or 3Gi`,
			f + `6: front matter: resources: cpus "0": want a number of cores above zero, such as 2 or 1.5`,
			f + `7: front matter: unknown key "disk"`,
		}},
		{"resources not a mapping", "kubernetes", []string{"resources: 3Gi"}, []string{
			f + `4: front matter: resources: want keys such as {memory: 2Gi, cpus: 2}, got "3Gi"`,
		}},
		{"resources without a cluster", "shell", []string{"resources: {memory: 1Gi}"}, []string{
			f + "4: front matter: resources: only a lesson with sandbox kubernetes has a cluster to size",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := ParseLesson("k/08-x.md", lessonWith(tc.sandbox, tc.extra...), Options{CompileCheck: fakeCompiler{}.compile})
			if l != nil {
				t.Errorf("got a lesson along with the problems")
			}
			got := problemStrings(t, err)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"3Gi": 3 << 30, "1.5Gi": 3 << 29, "512Mi": 512 << 20, "64Ki": 64 << 10, "1000": 1000} {
		if got, msg := parseSize(in); got != want || msg != "" {
			t.Errorf("parseSize(%q) = %d %q, want %d", in, got, msg, want)
		}
	}
	for _, in := range []string{"", "Gi", "-1Gi", "3GB", "NaN", "1e30"} {
		if _, msg := parseSize(in); msg == "" {
			t.Errorf("parseSize(%q) gave no problem", in)
		}
	}
}
