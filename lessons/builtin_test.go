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
	var tracks []string
	for _, tr := range cat.Tracks {
		tracks = append(tracks, tr.ID)
		if len(tr.Lessons) < 3 {
			t.Errorf("track %s has %d lessons; the course has at least 3 per track", tr.ID, len(tr.Lessons))
		}
	}
	if want := []string{"docker", "kubernetes", "kubeflow", "drills"}; !reflect.DeepEqual(tracks, want) {
		t.Errorf("built-in tracks = %q, want %q (outline: %q)", tracks, want, outline(cat))
	}
	// The first lesson a newcomer opens works without Docker.
	if l := cat.Lesson("docker", "welcome"); l == nil || l.Sandbox != SandboxShell {
		t.Errorf("docker/welcome must exist and use the shell sandbox")
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
