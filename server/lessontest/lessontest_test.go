package lessontest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kubelab/checker"
	"kubelab/lessons"
	"kubelab/sandbox"
	"kubelab/sandbox/shell"
	"kubelab/server/lessontest"
)

func load(t *testing.T, dir string) *lessons.Catalog {
	t.Helper()
	src, err := lessons.DirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := lessons.LoadAll(t.Context(), []lessons.Source{src}, lessons.Options{CompileCheck: checker.Compile})
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func TestGoodLessonPasses(t *testing.T) {
	t.Parallel()
	cat := load(t, "../testdata/lessons")
	r := lessontest.Runner{Provider: shell.New(t.TempDir(), nil), Kind: sandbox.KindShell}
	rep := r.Run(t.Context(), cat.Lesson("demo", "hello"))
	var out bytes.Buffer
	lessontest.WriteTable(&out, rep)
	if !rep.OK() {
		t.Fatalf("demo/hello should pass:\n%s", out.String())
	}
	for _, want := range []string{"demo/hello  (ok", "1     1       fail    pass", "2     1       quiz    quiz"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBadLessonIsRefused(t *testing.T) {
	t.Parallel()
	cat := load(t, "testdata/lessons")
	r := lessontest.Runner{Provider: shell.New(t.TempDir(), nil), Kind: sandbox.KindShell}
	rep := r.Run(t.Context(), cat.Lesson("bad", "wrong"))
	if rep.OK() || len(rep.Steps) != 3 {
		t.Fatalf("bad/wrong must fail with 3 steps: %+v", rep)
	}
	want := []struct {
		before, after, problem string
	}{
		{"PASSED", "pass", "check always passes before the solution ran: it proves nothing (or mark it `before: pass`)"},
		{"fail", "FAILED", "check file fails after the solution: command exited with code 1"},
		{"fail", "pass", ""},
	}
	for i, w := range want {
		s := rep.Steps[i]
		if s.Before != w.before || s.After != w.after {
			t.Errorf("step %d: before %s after %s, want %s %s (%v)", i+1, s.Before, s.After, w.before, w.after, s.Problems)
		}
		got := strings.Join(s.Problems, "; ")
		if w.problem == "" && got != "" || !strings.Contains(got, w.problem) {
			t.Errorf("step %d problems %q, want %q", i+1, got, w.problem)
		}
	}
}

func TestLessonNeedingMoreIsNotRun(t *testing.T) {
	t.Parallel()
	l := &lessons.Lesson{Track: "k", Slug: "x", Sandbox: lessons.SandboxKubernetes}
	r := lessontest.Runner{Provider: shell.New(t.TempDir(), nil), Kind: sandbox.KindShell}
	rep := r.Run(t.Context(), l)
	if rep.OK() || rep.Skipped != "needs a kubernetes sandbox; the shell provider gives at most shell" {
		t.Fatalf("got %+v", rep)
	}
}

func TestElapsedIsMeasured(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "slow"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "slow", "track.yaml"), []byte("title: Slow\norder: 1\ndescription: d\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "slow", "01-nap.md"), []byte("---\ntitle: Nap\nsandbox: shell\n---\n\n## Nap\n\n```check\nid: f\ntitle: f\ncommand:\n  run: test -f ~/f\n```\n\n```solution\nsleep 0.3; touch ~/f\n```\n"), 0o644))
	cat := load(t, dir)
	r := lessontest.Runner{Provider: shell.New(t.TempDir(), nil), Kind: sandbox.KindShell}
	rep := r.Run(t.Context(), cat.Lesson("slow", "nap"))
	if !rep.OK() || rep.Steps[0].Elapsed < 300*time.Millisecond || rep.Elapsed < rep.Steps[0].Elapsed {
		t.Fatalf("elapsed: lesson %v, step %v (%+v)", rep.Elapsed, rep.Steps[0].Elapsed, rep)
	}
}

func TestEarlierAttemptsAreReported(t *testing.T) {
	t.Parallel()
	rep := lessontest.Report{Lesson: "x/y", Earlier: []lessontest.Report{{Lesson: "x/y", Steps: []lessontest.StepReport{{Num: 1, Before: "fail", After: "FAILED", Problems: []string{"check a fails after the solution: boom"}}}}},
		Steps: []lessontest.StepReport{{Num: 1, Before: "fail", After: "pass"}}}
	var out bytes.Buffer
	lessontest.WriteTable(&out, rep)
	for _, want := range []string{"[attempt 1 of 2]", "x/y  (FAILED", "step 1: check a fails after the solution: boom", "x/y  (ok on attempt 2, after 1 failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
