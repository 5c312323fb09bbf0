package lessons

import (
	"context"
	"reflect"
	"testing"
)

// acceptAll is a CompileCheck that accepts every check, standing in for
// the checker's compiler.
func acceptAll(kind string, raw []byte) (any, error) { return kind, nil }

func TestBuiltInLoads(t *testing.T) {
	t.Parallel()
	cat, err := LoadAll(context.Background(), []Source{BuiltInSource()}, Options{CompileCheck: acceptAll})
	if err != nil {
		t.Fatalf("built-in content has problems:\n%v", err)
	}
	want := []string{
		"docker: welcome build-and-run",
		"kubernetes: architecture deploy-and-scale",
		"kubeflow: what-is-kubeflow describe-a-training-job",
	}
	if got := outline(cat); !reflect.DeepEqual(got, want) {
		t.Errorf("built-in course = %q, want %q", got, want)
	}
	// Lesson 01 of every track must work without Docker.
	for _, tr := range cat.Tracks {
		if s := tr.Lessons[0].Sandbox; s != SandboxShell && s != SandboxNone {
			t.Errorf("%s: sandbox %s, want shell or none", tr.Lessons[0].ID(), s)
		}
	}
}

// TestBuiltInWelcome pins what the browser test clicks: Run on step 1
// block 0 of docker/welcome, then Check on step 1.
func TestBuiltInWelcome(t *testing.T) {
	t.Parallel()
	cat, err := LoadAll(context.Background(), []Source{BuiltInSource()}, Options{CompileCheck: acceptAll})
	if err != nil {
		t.Fatal(err)
	}
	l := cat.Lesson("docker", "welcome")
	if l == nil {
		t.Fatal("no docker/welcome")
	}
	st := l.Steps[0]
	if got, want := st.Runnable[0].Text, "echo \"hello from $(whoami)\" > ~/hello.txt\n"; got != want {
		t.Errorf("step 1 block 0 = %q, want %q", got, want)
	}
	if len(st.Checks) != 1 || st.Checks[0].Kind != "command" || string(st.Checks[0].Raw) != "id: hello-file\ntitle: ~/hello.txt exists and is not empty\ncommand:\n  run: test -s ~/hello.txt\nhint: Run the first block of this step, then press Check again.\n" {
		t.Errorf("step 1 checks = %+v", st.Checks)
	}
}
