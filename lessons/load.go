package lessons

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// content is the built-in course. embed.FS is read-only.
//
//go:embed content
var content embed.FS

// BuiltIn is the built-in course: a folder of tracks, as Load wants.
func BuiltIn() fs.FS {
	sub, err := fs.Sub(content, "content")
	if err != nil {
		// fs.Sub only fails on an invalid path, and "content" is valid.
		panic(fmt.Sprintf("lessons: built-in content: %v", err))
	}
	return sub
}

// BuiltInSource is the built-in course as a Source, named for where its
// files live in the kubelab repository.
func BuiltInSource() Source {
	return Source{Name: "lessons/content", FS: BuiltIn()}
}

// Source is a place lessons are loaded from.
type Source struct {
	// Name is put before the paths of the source's files in problems: the
	// directory it was read from, or "lessons/content" for the built-in
	// course.
	Name string
	// FS holds either a folder of tracks (<track>/track.yaml,
	// <track>/<nn>-<slug>.md) or, when Track is set, a single track's folder.
	FS fs.FS
	// Track, when set, says FS is one track's folder (track.yaml at its
	// root) and gives the track's ID.
	Track string
}

// DirSource is the lessons in directory dir on disk: either a folder of
// tracks, or a single track's folder (one that holds track.yaml), whose
// track ID is then the folder's name.
func DirSource(dir string) (Source, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return Source{}, fmt.Errorf("lessons directory: %w", err)
	}
	if !info.IsDir() {
		return Source{}, fmt.Errorf("lessons directory %s: not a directory", dir)
	}
	src := Source{Name: dir, FS: os.DirFS(dir)}
	if _, err := os.Stat(filepath.Join(dir, "track.yaml")); err == nil {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return Source{}, fmt.Errorf("lessons directory %s: %w", dir, err)
		}
		src.Track = filepath.Base(abs)
	}
	return src, nil
}

// Track returns the track with ID id, or nil.
func (c *Catalog) Track(id string) *Track {
	for _, t := range c.Tracks {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// Lesson returns the lesson of track with slug, or nil.
func (c *Catalog) Lesson(track, slug string) *Lesson {
	t := c.Track(track)
	if t == nil {
		return nil
	}
	for _, l := range t.Lessons {
		if l.Slug == slug {
			return l
		}
	}
	return nil
}

// Load loads and validates the folder of tracks fsys. File paths in
// problems are relative to fsys, after opts.Prefix. Every problem found is
// returned as a *ErrorList (and no catalog); other errors are the
// context's.
func Load(ctx context.Context, fsys fs.FS, opts Options) (*Catalog, error) {
	return LoadAll(ctx, []Source{{Name: opts.Prefix, FS: fsys}}, Options{CompileCheck: opts.CompileCheck})
}

// LoadAll loads every source in order into one catalog. A later source
// adds tracks, or replaces a whole track of an earlier source that has the
// same ID (so lessons on disk override the built-in course). Every source
// is validated, even a replaced track. File paths in problems are the
// source's Name, after opts.Prefix, then the path inside the source.
// Every problem found is returned as a *ErrorList (and no catalog); other
// errors are the context's.
func LoadAll(ctx context.Context, sources []Source, opts Options) (*Catalog, error) {
	ld := &loader{r: newRenderer(), opts: opts}
	byID := make(map[string]*Track)
	for _, src := range sources {
		prefix := joinPrefix(opts.Prefix, src.Name)
		var tracks []*Track
		var err error
		if src.Track != "" {
			var t *Track
			t, err = ld.track(ctx, src.FS, ".", src.Track, prefix)
			if t != nil {
				tracks = []*Track{t}
			}
		} else {
			tracks, err = ld.tracks(ctx, src.FS, prefix)
		}
		if err != nil {
			return nil, err
		}
		for _, t := range tracks {
			byID[t.ID] = t
		}
	}
	if err := errorList(ld.problems); err != nil {
		return nil, err
	}
	cat := &Catalog{}
	for _, t := range byID {
		cat.Tracks = append(cat.Tracks, t)
	}
	slices.SortFunc(cat.Tracks, func(a, b *Track) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.ID, b.ID))
	})
	return cat, nil
}

// Lint loads sources and returns every problem, sorted; none means the
// lessons are good. A cancelled ctx is reported as a problem, so a lint
// that did not finish never looks clean.
func Lint(ctx context.Context, sources []Source, opts Options) []Problem {
	_, err := LoadAll(ctx, sources, opts)
	var list *ErrorList
	switch {
	case err == nil:
		return nil
	case errors.As(err, &list):
		return *list
	default:
		return []Problem{{File: "lint", Msg: err.Error()}}
	}
}

// loader holds what one load shares: the renderer and the problems.
type loader struct {
	r        *renderer
	opts     Options
	problems []Problem
}

// add records a problem.
func (ld *loader) add(file string, line int, format string, args ...any) {
	ld.problems = append(ld.problems, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// tracks loads every track folder at the root of fsys. Folders whose name
// starts with "." or "_" are skipped, and so are files.
func (ld *loader) tracks(ctx context.Context, fsys fs.FS, prefix string) ([]*Track, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		ld.add(displayPath(prefix, "."), 0, "read lessons: %v", unwrapPath(err))
		return nil, nil
	}
	var out []*Track
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "_") {
			continue
		}
		t, err := ld.track(ctx, fsys, e.Name(), e.Name(), prefix)
		if err != nil {
			return nil, err
		}
		if t != nil {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		ld.add(displayPath(prefix, "."), 0, "no tracks: want folders holding a track.yaml and <nn>-<slug>.md lessons")
	}
	return out, nil
}

// trackKeys are the keys a track.yaml may have.
var trackKeys = []string{"title", "order", "description"}

// track loads the track folder dir of fsys, whose ID is id. It returns nil
// when there is no track to speak of (a problem has been reported).
func (ld *loader) track(ctx context.Context, fsys fs.FS, dir, id, prefix string) (*Track, error) {
	t := &Track{ID: id}
	yamlFile := displayPath(prefix, path.Join(dir, "track.yaml"))
	if !validID.MatchString(id) {
		ld.add(displayPath(prefix, dir), 0, "track folder name %q: use lowercase letters, digits and dashes (it is part of URLs)", id)
	}
	src, err := fs.ReadFile(fsys, path.Join(dir, "track.yaml"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ld.add(yamlFile, 0, "missing: a track folder needs a track.yaml with title, order and description")
	case err != nil:
		ld.add(yamlFile, 0, "read: %v", unwrapPath(err))
	default:
		p := &problems{file: yamlFile}
		decodeTrack(src, t, p)
		ld.problems = append(ld.problems, p.list...)
	}

	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		ld.add(displayPath(prefix, dir), 0, "read track: %v", unwrapPath(err))
		return nil, nil
	}
	byNum := make(map[int]string)
	bySlug := make(map[string]string)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".md") {
			continue // assets, track.yaml
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("load lessons: %w", err)
		}
		rel := path.Join(dir, e.Name())
		file := displayPath(prefix, rel)
		src, err := fs.ReadFile(fsys, rel)
		if err != nil {
			ld.add(file, 0, "read: %v", unwrapPath(err))
			continue
		}
		l, ps := ld.r.parseLesson(file, src, ld.opts)
		ld.problems = append(ld.problems, ps...)
		l.Track = id
		if l.Slug == "" {
			continue // bad file name, reported
		}
		if other, dup := byNum[l.Num]; dup {
			ld.add(file, 0, "lesson number %02d is also used by %s", l.Num, other)
		}
		if other, dup := bySlug[l.Slug]; dup {
			ld.add(file, 0, "lesson slug %q is also used by %s", l.Slug, other)
		}
		byNum[l.Num], bySlug[l.Slug] = e.Name(), e.Name()
		t.Lessons = append(t.Lessons, l)
	}
	slices.SortStableFunc(t.Lessons, func(a, b *Lesson) int { return cmp.Compare(a.Num, b.Num) })
	return t, nil
}

// decodeTrack fills t from a track.yaml.
func decodeTrack(src []byte, t *Track, p *problems) {
	r := &yamlReader{p: p, base: 0}
	root, errLine, errMsg := parseYAML(src)
	if errMsg != "" {
		r.add(errLine, "bad YAML: %s", errMsg)
		return
	}
	if root == nil {
		root = &yaml.Node{Kind: yaml.MappingNode}
	}
	if root.Kind != yaml.MappingNode {
		r.add(root.Line, "want title:, order: and description:, got %s", describe(root))
		return
	}
	keys := r.entries(root, trackKeys, nil)
	if e, ok := keys["title"]; ok {
		s, _ := r.text(e)
		t.Title = strings.TrimSpace(s)
	}
	if t.Title == "" {
		line := 1
		if e, ok := keys["title"]; ok {
			line = e.line
		}
		r.add(line, "title is required")
	}
	if e, ok := keys["order"]; ok {
		t.Order, _ = r.integer(e)
	}
	if e, ok := keys["description"]; ok {
		s, _ := r.text(e)
		t.Description = strings.TrimSpace(s)
	}
}

// joinPrefix joins two path prefixes, either of which may be empty.
func joinPrefix(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	default:
		return strings.TrimSuffix(a, "/") + "/" + b
	}
}

// displayPath is rel (a slash path inside a source) as shown in problems.
func displayPath(prefix, rel string) string {
	if prefix == "" {
		return rel
	}
	if rel == "." {
		return strings.TrimSuffix(prefix, "/")
	}
	return strings.TrimSuffix(prefix, "/") + "/" + rel
}

// unwrapPath drops the path from an *fs.PathError, which the problem's
// file already shows.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
