package lessons

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestDrillFrontMatter(t *testing.T) {
	t.Parallel()
	good := "---\ntitle: Ten minutes\nsandbox: shell\ndrill: true\ntime_limit: 10m\nhint_cost: 2\n---\n\n## Task\n\n```check\nid: a\ntitle: A\npoints: 5\ncommand:\n  run: \"false\"\n```\n"
	l, err := ParseLesson("01-drill.md", []byte(good), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !l.Drill || l.TimeLimit != 10*time.Minute || l.HintCost != 2 || l.Steps[0].Checks[0].Points != 5 {
		t.Fatalf("drill fields: drill=%v limit=%v cost=%d points=%d", l.Drill, l.TimeLimit, l.HintCost, l.Steps[0].Checks[0].Points)
	}
	plain, err := ParseLesson("01-plain.md", []byte("---\ntitle: T\nsandbox: none\n---\n\n## Q\n\n```quiz\nid: q\nquestion: Q?\noptions:\n  - text: a\n    correct: true\n  - text: b\n```\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Drill || plain.HintCost != 1 || plain.Steps[0].Checks[0].Points != 1 {
		t.Fatalf("defaults: drill=%v cost=%d points=%d", plain.Drill, plain.HintCost, plain.Steps[0].Checks[0].Points)
	}

	bad := "---\ntitle: T\nsandbox: shell\ndrill: true\nhint_cost: -1\n---\n\n## Task\n\n```check\nid: a\ntitle: A\npoints: -2\ncommand:\n  run: \"false\"\n```\n"
	_, err = ParseLesson("01-bad.md", []byte(bad), Options{})
	var list *ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want problems, got %v", err)
	}
	var got []string
	for _, p := range *list {
		got = append(got, p.String())
	}
	want := []string{
		"01-bad.md:4: front matter: a drill needs a time_limit, such as time_limit: 10m",
		"01-bad.md:5: front matter: hint_cost: want 0 or more, got -1",
		"01-bad.md:13: check a: points: want 0 or more, got -2",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("problems:\n%q\nwant\n%q", got, want)
	}
	_, err = ParseLesson("01-nodrill.md", []byte("---\ntitle: T\nsandbox: shell\ntime_limit: 5m\n---\n"), Options{})
	if err == nil || err.Error() != "01-nodrill.md:4: front matter: time_limit only applies to a drill (drill: true)" {
		t.Fatalf("time_limit without drill: %v", err)
	}
}
