package lessons

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// outline is a catalog as "track: lesson lesson" lines, in order.
func outline(c *Catalog) []string {
	var out []string
	for _, t := range c.Tracks {
		line := t.ID + ":"
		for _, l := range t.Lessons {
			line += " " + l.Slug
		}
		out = append(out, line)
	}
	return out
}

func TestLoad(t *testing.T) {
	t.Parallel()
	cat, err := Load(context.Background(), os.DirFS("testdata/course"), Options{Prefix: "testdata/course/", CompileCheck: acceptAll})
	if err != nil {
		t.Fatal(err)
	}
	// beta has order 1, alpha order 2; 9-nine comes before 10-ten; README.md,
	// _drafts and diagram.txt are not lessons.
	if got, want := outline(cat), []string{"beta: only", "alpha: nine ten"}; !reflect.DeepEqual(got, want) {
		t.Errorf("catalog = %q, want %q", got, want)
	}
	beta := cat.Track("beta")
	if beta == nil || beta.Title != "Beta" || beta.Order != 1 || beta.Description != "The first track, by order." {
		t.Errorf("track beta = %+v", beta)
	}
	ten := cat.Lesson("alpha", "ten")
	if ten == nil {
		t.Fatal(`Lesson("alpha", "ten") is nil`)
	}
	if ten.Track != "alpha" || ten.Num != 10 || ten.File != "testdata/course/alpha/10-ten.md" || ten.Steps[0].Checks[0].Compiled != "command" {
		t.Errorf("lesson ten: track %q num %d file %q compiled %v", ten.Track, ten.Num, ten.File, ten.Steps[0].Checks[0].Compiled)
	}
	for _, miss := range [][2]string{{"alpha", "eleven"}, {"gamma", "ten"}} {
		if l := cat.Lesson(miss[0], miss[1]); l != nil {
			t.Errorf("Lesson(%q, %q) = %v, want nil", miss[0], miss[1], l)
		}
	}
	if cat.Track("gamma") != nil {
		t.Error(`Track("gamma") is not nil`)
	}
}

func TestLoadProblems(t *testing.T) {
	t.Parallel()
	_, err := Load(context.Background(), os.DirFS("testdata/broken"), Options{Prefix: "testdata/broken"})
	want := []string{
		`testdata/broken/Bad_Folder: track folder name "Bad_Folder": use lowercase letters, digits and dashes (it is part of URLs)`,
		"testdata/broken/badyaml/track.yaml:2: bad YAML: did not find expected ',' or ']'",
		"testdata/broken/dups/01-b.md: lesson number 01 is also used by 01-a.md",
		`testdata/broken/dups/02-a.md: lesson slug "a" is also used by 01-a.md`,
		`testdata/broken/dups/03-Bad.md: lesson file name "03-Bad.md" must be <nn>-<slug>.md, such as 01-welcome.md`,
		`testdata/broken/dups/notes.md: lesson file name "notes.md" must be <nn>-<slug>.md, such as 01-welcome.md`,
		`testdata/broken/keys/track.yaml:1: unknown key "titel"; did you mean "title"?`,
		"testdata/broken/keys/track.yaml:1: title is required",
		`testdata/broken/keys/track.yaml:2: order: want a whole number, got "first"`,
		"testdata/broken/nodesc/track.yaml: missing: a track folder needs a track.yaml with title, order and description",
	}
	if got := problemStrings(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func TestLoadNoTracks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := Load(context.Background(), os.DirFS(dir), Options{Prefix: "empty"})
	want := []string{"empty: no tracks: want folders holding a track.yaml and <nn>-<slug>.md lessons"}
	if got := problemStrings(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

func TestLoadAllOverridesWholeTracks(t *testing.T) {
	t.Parallel()
	local, err := DirSource("testdata/override")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := LoadAll(context.Background(), []Source{BuiltInSource(), local}, Options{CompileCheck: acceptAll})
	if err != nil {
		t.Fatal(err)
	}
	docker := cat.Track("docker")
	if docker == nil || docker.Title != "Docker, our way" {
		t.Fatalf("docker track = %+v, want the local one", docker)
	}
	if got := outline(&Catalog{Tracks: []*Track{docker}}); !reflect.DeepEqual(got, []string{"docker: local"}) {
		t.Errorf("docker track = %q, want only the local lesson", got)
	}
	if l := cat.Lesson("docker", "local"); l == nil || l.File != "testdata/override/docker/01-local.md" {
		t.Errorf("local lesson = %+v", l)
	}
	if cat.Lesson("kubernetes", "architecture") == nil || cat.Lesson("docker", "welcome") != nil {
		t.Errorf("catalog = %q: want built-in kubernetes, local docker", outline(cat))
	}
	if got := []string{cat.Tracks[0].ID, cat.Tracks[1].ID, cat.Tracks[2].ID}; !reflect.DeepEqual(got, []string{"docker", "kubernetes", "kubeflow"}) {
		t.Errorf("track order = %q", got)
	}
}

func TestDirSource(t *testing.T) {
	t.Parallel()
	tracks, err := DirSource("testdata/course")
	if err != nil {
		t.Fatal(err)
	}
	if tracks.Track != "" || tracks.Name != "testdata/course" {
		t.Errorf("folder of tracks = %+v", tracks)
	}
	single, err := DirSource("testdata/course/alpha")
	if err != nil {
		t.Fatal(err)
	}
	if single.Track != "alpha" || single.Name != "testdata/course/alpha" {
		t.Errorf("single track = %+v", single)
	}
	cat, err := LoadAll(context.Background(), []Source{single}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := outline(cat); !reflect.DeepEqual(got, []string{"alpha: nine ten"}) {
		t.Errorf("catalog = %q", got)
	}
	if f := cat.Lesson("alpha", "nine").File; f != "testdata/course/alpha/9-nine.md" {
		t.Errorf("file = %q", f)
	}

	if _, err := DirSource("testdata/nope"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: err = %v, want not exist", err)
	}
	if _, err := DirSource("testdata/course/README.md"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file: err = %v, want not a directory", err)
	}
}

func TestDirSourceSingleTrackProblems(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "mytrack")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "track.yaml"), "title: Mine\n")
	write(t, filepath.Join(dir, "01-first.md"), "---\ntitle: First\nsandbox: nope\n---\n")
	src, err := DirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := Lint(context.Background(), []Source{src}, Options{})
	want := []Problem{{File: dir + "/01-first.md", Line: 3, Msg: `front matter: unknown sandbox "nope": want none, shell, docker or kubernetes`}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Lint = %+v, want %+v", got, want)
	}
}

func TestLint(t *testing.T) {
	t.Parallel()
	if got := Lint(context.Background(), []Source{BuiltInSource()}, Options{CompileCheck: acceptAll}); len(got) != 0 {
		t.Errorf("built-in content: %v", got)
	}
	got := Lint(context.Background(), []Source{{Name: "testdata/broken", FS: os.DirFS("testdata/broken")}}, Options{})
	if len(got) != 10 || got[0].File != "testdata/broken/Bad_Folder" {
		t.Errorf("broken: %d problems, first %+v", len(got), got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got = Lint(ctx, []Source{BuiltInSource()}, Options{})
	if len(got) != 1 || !strings.Contains(got[0].Msg, "context canceled") {
		t.Errorf("cancelled lint = %+v, want one problem saying so", got)
	}
}

func TestLoadCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cat, err := Load(ctx, BuiltIn(), Options{})
	var list *ErrorList
	if cat != nil || !errors.Is(err, context.Canceled) || errors.As(err, &list) {
		t.Errorf("Load = %v, %v; want nil and context.Canceled", cat, err)
	}
}

// write creates a file with content.
func write(t *testing.T, file, content string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
