package lessons

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// courseDir writes a one-track, one-lesson course and returns its
// directory and the lesson's path.
func courseDir(t *testing.T) (dir, lesson string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "demo"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "demo", "track.yaml"), "title: Demo\norder: 1\n")
	lesson = filepath.Join(dir, "demo", "01-one.md")
	edit(t, lesson, "One", 1)
	return dir, lesson
}

// edit rewrites the lesson with title and sets its modification time to
// second n of 2030, so every edit is seen whatever the file system's
// timestamp resolution.
func edit(t *testing.T, lesson, title string, n int) {
	t.Helper()
	sandbox := "none"
	if title == "" {
		title, sandbox = "Broken", "nope"
	}
	write(t, lesson, "---\ntitle: "+title+"\nsandbox: "+sandbox+"\n---\n")
	mtime := time.Date(2030, 1, 1, 0, 0, n, 0, time.UTC)
	if err := os.Chtimes(lesson, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// title is the lesson's title in cat, or "" when there is no catalog.
func title(cat *Catalog) string {
	if cat == nil {
		return ""
	}
	return cat.Lesson("demo", "one").Title
}

func TestLibraryWatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, lesson := courseDir(t)
	src, err := DirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Unix(1000, 0)}
	lib, err := newLibrary(ctx, []Source{src}, Options{}, true, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	first, err := lib.Catalog(ctx)
	if err != nil || title(first) != "One" {
		t.Fatalf("first load = %q, %v", title(first), err)
	}

	edit(t, lesson, "Two", 2)
	clock.Advance(100 * time.Millisecond)
	if cat, err := lib.Catalog(ctx); cat != first || err != nil {
		t.Errorf("within 500ms: %q, %v; want the cached catalog", title(cat), err)
	}

	clock.Advance(500 * time.Millisecond)
	second, err := lib.Catalog(ctx)
	if err != nil || title(second) != "Two" {
		t.Fatalf("after an edit = %q, %v; want Two", title(second), err)
	}

	clock.Advance(time.Second)
	if cat, err := lib.Catalog(ctx); cat != second || err != nil {
		t.Errorf("nothing changed: %q, %v; want the same catalog, not a reload", title(cat), err)
	}

	edit(t, lesson, "", 3) // broken
	clock.Advance(time.Second)
	for i := range 2 { // the error stays until the file is fixed
		cat, err := lib.Catalog(ctx)
		var list *ErrorList
		if cat != second || !errors.As(err, &list) || len(*list) != 1 || (*list)[0].Line != 3 {
			t.Errorf("broken, call %d: %q, %v; want the last good catalog and the problem", i+1, title(cat), err)
		}
		clock.Advance(time.Second)
	}

	edit(t, lesson, "Three", 4)
	clock.Advance(time.Second)
	if cat, err := lib.Catalog(ctx); err != nil || title(cat) != "Three" {
		t.Errorf("fixed = %q, %v; want Three", title(cat), err)
	}

	// A new file counts as a change too.
	edit(t, filepath.Join(dir, "demo", "02-two.md"), "Another", 5)
	clock.Advance(time.Second)
	if cat, err := lib.Catalog(ctx); err != nil || cat.Lesson("demo", "two") == nil {
		t.Errorf("new file: %v, %v; want lesson two", cat, err)
	}
}

func TestLibraryNoWatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, lesson := courseDir(t)
	src, err := DirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := NewLibrary(ctx, []Source{src}, Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	first, err := lib.Catalog(ctx)
	if err != nil || title(first) != "One" {
		t.Fatalf("first load = %q, %v", title(first), err)
	}
	edit(t, lesson, "Two", 2)
	if cat, err := lib.Catalog(ctx); cat != first || err != nil {
		t.Errorf("without Watch = %q, %v; want the first catalog", title(cat), err)
	}
}

func TestLibraryBrokenAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, lesson := courseDir(t)
	edit(t, lesson, "", 2)
	src, err := DirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, watch := range []bool{false, true} {
		lib, err := NewLibrary(ctx, []Source{src}, Options{}, watch)
		var list *ErrorList
		if lib != nil || !errors.As(err, &list) || (*list)[0].Line != 3 {
			t.Errorf("watch %v: %v, %v; want no library and the problems", watch, lib, err)
		}
	}
}

// TestLibraryConcurrent is for the race detector.
func TestLibraryConcurrent(t *testing.T) {
	t.Parallel()
	lib, err := NewLibrary(context.Background(), []Source{BuiltInSource()}, Options{}, true)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 3 {
				if _, err := lib.Catalog(context.Background()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}
