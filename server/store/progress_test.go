package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)

func TestRecordAttemptPassFailSemantics(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	clk := withClock(db, t0)
	ctx := t.Context()

	t1, t2, t3, t4 := t0, t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	steps := []struct {
		name   string
		at     time.Time
		passed bool
		want   StepProgress
	}{
		{"first attempt fails", t1, false, StepProgress{Lesson: "k8s/scale", Step: 2, Attempts: 1, FirstSeen: t1, UpdatedAt: t1}},
		{"second attempt passes", t2, true, StepProgress{Lesson: "k8s/scale", Step: 2, Passed: true, PassedAt: t2, Attempts: 2, FirstSeen: t1, UpdatedAt: t2}},
		{"a later failure keeps the pass", t3, false, StepProgress{Lesson: "k8s/scale", Step: 2, Passed: true, PassedAt: t2, Attempts: 3, FirstSeen: t1, UpdatedAt: t3}},
		{"passing again keeps the first pass time", t4, true, StepProgress{Lesson: "k8s/scale", Step: 2, Passed: true, PassedAt: t2, Attempts: 4, FirstSeen: t1, UpdatedAt: t4}},
	}
	var ids []int64
	for _, s := range steps {
		clk.Set(s.at)
		id, err := db.RecordAttempt(ctx, Attempt{Learner: "ada", Lesson: "k8s/scale", Step: 2, Passed: s.passed, Results: []byte(`[]`), At: s.at})
		if err != nil {
			t.Fatalf("%s: RecordAttempt: %v", s.name, err)
		}
		ids = append(ids, id)
		got, err := db.LessonProgress(ctx, "ada", "k8s/scale")
		if err != nil {
			t.Fatalf("%s: LessonProgress: %v", s.name, err)
		}
		if want := []StepProgress{s.want}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: LessonProgress =\n %+v\nwant\n %+v", s.name, got, want)
		}
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Errorf("attempt IDs %v are not increasing", ids)
		}
	}
	as, err := db.Attempts(ctx, "ada", "k8s/scale", 0)
	if err != nil {
		t.Fatal(err)
	}
	var gotPassed []bool
	for _, a := range as {
		gotPassed = append(gotPassed, a.Passed)
	}
	if want := []bool{true, false, true, false}; !reflect.DeepEqual(gotPassed, want) {
		t.Errorf("Attempts newest first passed = %v, want %v", gotPassed, want)
	}
}

func TestRecordAttemptZeroTimeMeansNow(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	withClock(db, t0)
	ctx := t.Context()
	id, err := db.RecordAttempt(ctx, Attempt{Learner: "ada", Lesson: "docker/run", Step: 1, Passed: true})
	if err != nil {
		t.Fatal(err)
	}
	as, err := db.Attempts(ctx, "ada", "docker/run", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []Attempt{{ID: id, Learner: "ada", Lesson: "docker/run", Step: 1, Passed: true, At: t0}}
	if !reflect.DeepEqual(as, want) {
		t.Errorf("Attempts = %+v, want %+v", as, want)
	}
	ps, err := db.Progress(ctx, "ada")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || !ps[0].PassedAt.Equal(t0) {
		t.Errorf("Progress = %+v, want one step passed at %v", ps, t0)
	}
}

// TestTimesRoundTrip stores times in another zone with full nanosecond
// precision; they come back as the same instant, in UTC, to the nanosecond.
func TestTimesRoundTrip(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := t.Context()
	zone := time.FixedZone("UTC+5:30", 5*3600+30*60)
	tests := []time.Time{
		time.Date(2026, 3, 4, 10, 36, 7, 891234567, zone),
		time.Date(1970, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), // negative nanos
		time.Date(2262, 4, 11, 23, 47, 16, 854775807, time.UTC),  // the last representable instant
		time.Now(), // carries a monotonic reading, which must not matter
	}
	for i, at := range tests {
		lesson := fmt.Sprintf("t/%d", i)
		if _, err := db.RecordAttempt(ctx, Attempt{Learner: "ada", Lesson: lesson, Step: 1, Passed: true, At: at}); err != nil {
			t.Fatalf("RecordAttempt at %v: %v", at, err)
		}
		as, err := db.Attempts(ctx, "ada", lesson, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 1 || as[0].At != at.Round(0).UTC() {
			t.Errorf("stored %v, read back %+v", at, as)
		}
		ps, err := db.LessonProgress(ctx, "ada", lesson)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 1 || ps[0].PassedAt != at.Round(0).UTC() {
			t.Errorf("PassedAt: stored %v, read back %+v", at, ps)
		}
	}
}

func TestRecordAttemptInvalid(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	tests := []struct {
		name string
		a    Attempt
		want string
	}{
		{"no learner", Attempt{Lesson: "k8s/x", Step: 1}, "record attempt: invalid: empty learner ID"},
		{"no lesson", Attempt{Learner: "ada", Step: 1}, "record attempt: invalid: empty lesson"},
		{"step 0", Attempt{Learner: "ada", Lesson: "k8s/x"}, "record attempt: invalid: step 0, steps count from 1"},
		{"results not JSON", Attempt{Learner: "ada", Lesson: "k8s/x", Step: 1, Results: []byte(`{"checks":`)}, "record attempt ada k8s/x step 1: invalid: results are not valid JSON"},
		{"results empty", Attempt{Learner: "ada", Lesson: "k8s/x", Step: 1, Results: []byte{}}, "record attempt ada k8s/x step 1: invalid: results are not valid JSON"},
		{"time out of range", Attempt{Learner: "ada", Lesson: "k8s/x", Step: 1, At: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, "record attempt ada k8s/x step 1: invalid: attempt time 3000-01-01T00:00:00Z is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := db.RecordAttempt(t.Context(), tt.a)
			if !errors.Is(err, ErrInvalid) || err.Error() != tt.want {
				t.Errorf("RecordAttempt(%+v) err = %v, want ErrInvalid %q", tt.a, err, tt.want)
			}
		})
	}
	t.Cleanup(func() {
		// Nothing of the refused attempts may have been written.
		var n int
		if err := db.read.QueryRow(`SELECT (SELECT count(*) FROM attempts) + (SELECT count(*) FROM learners) + (SELECT count(*) FROM step_progress)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("refused attempts left %d rows", n)
		}
	})
}

func TestResultsStoredVerbatim(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := t.Context()
	results, err := os.ReadFile("testdata/results.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.RecordAttempt(ctx, Attempt{Learner: "ada", Lesson: "k8s/scale", Step: 2, Results: results, At: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RecordAttempt(ctx, Attempt{Learner: "ada", Lesson: "k8s/scale", Step: 2, Results: nil, At: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	as, err := db.Attempts(ctx, "ada", "k8s/scale", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 {
		t.Fatalf("got %d attempts, want 2", len(as))
	}
	if as[0].Results != nil {
		t.Errorf("nil results read back as %q, want nil", as[0].Results)
	}
	if !bytes.Equal(as[1].Results, results) {
		t.Errorf("results read back as\n%s\nwant, byte for byte,\n%s", as[1].Results, results)
	}
}

func TestAttemptsOrderAndLimit(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := t.Context()
	record := func(learner, lesson string, at time.Time) int64 {
		t.Helper()
		id, err := db.RecordAttempt(ctx, Attempt{Learner: learner, Lesson: lesson, Step: 1, At: at})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// Recorded out of time order; two at the same instant.
	a := record("ada", "k8s/pods", t0)
	b := record("ada", "k8s/pods", t0.Add(2*time.Second))
	c := record("ada", "k8s/pods", t0.Add(time.Second))
	d := record("ada", "k8s/pods", t0.Add(2*time.Second))
	record("bob", "k8s/pods", t0.Add(time.Hour))   // another learner
	record("ada", "k8s/deploy", t0.Add(time.Hour)) // another lesson
	tests := []struct {
		limit int
		want  []int64
	}{
		{0, []int64{d, b, c, a}},
		{-1, []int64{d, b, c, a}},
		{2, []int64{d, b}},
		{10, []int64{d, b, c, a}},
	}
	for _, tt := range tests {
		as, err := db.Attempts(ctx, "ada", "k8s/pods", tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, a := range as {
			got = append(got, a.ID)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Attempts(limit %d) IDs = %v, want %v", tt.limit, got, tt.want)
		}
	}
	as, err := db.Attempts(ctx, "nobody", "k8s/pods", 0)
	if err != nil || as == nil || len(as) != 0 {
		t.Errorf("Attempts of an unknown learner = %v, %v; want an empty list and no error", as, err)
	}
}

func TestProgressOrderedByLessonAndStep(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	withClock(db, t0)
	ctx := t.Context()
	for _, s := range []struct {
		lesson string
		step   int
	}{{"k8s/scale", 2}, {"docker/run", 1}, {"k8s/scale", 10}, {"k8s/scale", 1}} {
		if _, err := db.RecordAttempt(ctx, Attempt{Learner: "ada", Lesson: s.lesson, Step: s.step, At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.RecordAttempt(ctx, Attempt{Learner: "bob", Lesson: "aaa/first", Step: 1, At: t0}); err != nil {
		t.Fatal(err)
	}
	ps, err := db.Progress(ctx, "ada")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("%s#%d", p.Lesson, p.Step))
	}
	if want := []string{"docker/run#1", "k8s/scale#1", "k8s/scale#2", "k8s/scale#10"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Progress order = %q, want %q", got, want)
	}
	ps, err = db.Progress(ctx, "nobody")
	if err != nil || ps == nil || len(ps) != 0 {
		t.Errorf("Progress of an unknown learner = %v, %v; want an empty list and no error", ps, err)
	}
}

func TestRecordHintIdempotent(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	clk := withClock(db, t0)
	ctx := t.Context()

	steps := []struct {
		at    time.Time
		step  int
		index int
		want  int
	}{
		{t0, 1, 0, 1},
		{t0.Add(time.Minute), 1, 0, 1}, // shown again: no change
		{t0.Add(2 * time.Minute), 1, 2, 2},
		{t0.Add(3 * time.Minute), 1, 2, 2},
		{t0.Add(4 * time.Minute), 2, 0, 1}, // another step counts separately
	}
	for _, s := range steps {
		clk.Set(s.at)
		got, err := db.RecordHint(ctx, "ada", "k8s/scale", s.step, s.index)
		if err != nil {
			t.Fatalf("RecordHint(step %d, hint %d): %v", s.step, s.index, err)
		}
		if got != s.want {
			t.Errorf("RecordHint(step %d, hint %d) at %v = %d, want %d", s.step, s.index, s.at, got, s.want)
		}
	}
	ps, err := db.LessonProgress(ctx, "ada", "k8s/scale")
	if err != nil {
		t.Fatal(err)
	}
	want := []StepProgress{
		// updated_at moved when hint 2 was first shown, not when it was shown again.
		{Lesson: "k8s/scale", Step: 1, HintsShown: 2, FirstSeen: t0, UpdatedAt: t0.Add(2 * time.Minute)},
		{Lesson: "k8s/scale", Step: 2, HintsShown: 1, FirstSeen: t0.Add(4 * time.Minute), UpdatedAt: t0.Add(4 * time.Minute)},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Errorf("LessonProgress =\n %+v\nwant\n %+v", ps, want)
	}

	shown, err := db.HintsShown(ctx, "ada", "k8s/scale", 1)
	if err != nil || !reflect.DeepEqual(shown, []int{0, 2}) {
		t.Errorf("HintsShown(step 1) = %v, %v; want [0 2]", shown, err)
	}
	if shown, err := db.HintsShown(ctx, "ada", "k8s/scale", 3); err != nil || shown == nil || len(shown) != 0 {
		t.Errorf("HintsShown(step 3) = %#v, %v; want an empty list", shown, err)
	}

	// An attempt after hints keeps the hint count.
	clk.Set(t0.Add(5 * time.Minute))
	if _, err := db.RecordAttempt(ctx, Attempt{Learner: "ada", Lesson: "k8s/scale", Step: 1, Passed: true, At: t0.Add(5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	ps, err = db.LessonProgress(ctx, "ada", "k8s/scale")
	if err != nil {
		t.Fatal(err)
	}
	if wantStep1 := (StepProgress{Lesson: "k8s/scale", Step: 1, Passed: true, PassedAt: t0.Add(5 * time.Minute), Attempts: 1, HintsShown: 2, FirstSeen: t0, UpdatedAt: t0.Add(5 * time.Minute)}); ps[0] != wantStep1 {
		t.Errorf("step 1 after an attempt = %+v, want %+v", ps[0], wantStep1)
	}
}

func TestRecordHintInvalid(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	tests := []struct {
		learner, lesson string
		step, index     int
		want            string
	}{
		{"", "k8s/x", 1, 0, "record hint: invalid: empty learner ID"},
		{"ada", "", 1, 0, "record hint: invalid: empty lesson"},
		{"ada", "k8s/x", 0, 0, "record hint: invalid: step 0, steps count from 1"},
		{"ada", "k8s/x", 1, -1, "record hint ada k8s/x step 1: invalid: hint index -1, hints count from 0"},
	}
	for _, tt := range tests {
		n, err := db.RecordHint(t.Context(), tt.learner, tt.lesson, tt.step, tt.index)
		if n != 0 || !errors.Is(err, ErrInvalid) || err.Error() != tt.want {
			t.Errorf("RecordHint(%q, %q, %d, %d) = %d, %v; want 0, ErrInvalid %q", tt.learner, tt.lesson, tt.step, tt.index, n, err, tt.want)
		}
	}
}

func TestEnsureLearner(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	clk := withClock(db, t0)
	ctx := t.Context()

	learner := func() (created, lastSeen time.Time) {
		t.Helper()
		var c, l int64
		if err := db.read.QueryRowContext(ctx, `SELECT created_at, last_seen FROM learners WHERE id = 'ada'`).Scan(&c, &l); err != nil {
			t.Fatal(err)
		}
		return time.Unix(0, c).UTC(), time.Unix(0, l).UTC()
	}
	if err := db.EnsureLearner(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if c, l := learner(); c != t0 || l != t0 {
		t.Errorf("new learner: created %v, last seen %v; want both %v", c, l, t0)
	}
	later := clk.Set(t0.Add(time.Hour))
	if err := db.EnsureLearner(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if c, l := learner(); c != t0 || l != later {
		t.Errorf("known learner: created %v, last seen %v; want %v, %v", c, l, t0, later)
	}
	// Recording work also counts as being seen.
	latest := clk.Set(t0.Add(2 * time.Hour))
	if _, err := db.RecordHint(ctx, "ada", "k8s/x", 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, l := learner(); l != latest {
		t.Errorf("after a hint: last seen %v, want %v", l, latest)
	}

	err := db.EnsureLearner(ctx, "")
	if !errors.Is(err, ErrInvalid) || err.Error() != "ensure learner: invalid: empty learner ID" {
		t.Errorf("EnsureLearner(\"\") err = %v, want ErrInvalid \"ensure learner: invalid: empty learner ID\"", err)
	}
}

// TestConcurrentWriters records attempts from 20 goroutines through two DB
// handles on the same file: within a handle writers queue for its one write
// connection; across handles they contend for SQLite's lock and must wait
// (busy_timeout, BEGIN IMMEDIATE) rather than fail with SQLITE_BUSY. Readers
// run alongside.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbs := []*DB{mustOpenDBIn(t, dir), mustOpenDBIn(t, dir)}
	ctx := t.Context()

	const writers, perWriter = 20, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter*2)
	ids := make(chan int64, writers*perWriter)
	for w := range writers {
		db := dbs[w%len(dbs)]
		wg.Go(func() {
			for i := range perWriter {
				id, err := db.RecordAttempt(ctx, Attempt{
					Learner: fmt.Sprintf("learner-%d", w%5),
					Lesson:  "k8s/scale",
					Step:    1 + i%3,
					Passed:  i == perWriter-1,
					Results: []byte(fmt.Sprintf(`{"writer":%d,"i":%d}`, w, i)),
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d attempt %d: %w", w, i, err)
					continue
				}
				ids <- id
				if _, err := db.RecordHint(ctx, fmt.Sprintf("learner-%d", w%5), "k8s/scale", 1+i%3, i%2); err != nil {
					errs <- fmt.Errorf("writer %d hint %d: %w", w, i, err)
				}
			}
		})
		wg.Go(func() {
			for range perWriter {
				if _, err := db.Progress(ctx, fmt.Sprintf("learner-%d", w%5)); err != nil {
					errs <- fmt.Errorf("reader %d: %w", w, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		t.Error(err)
	}
	seen := map[int64]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("attempt ID %d returned twice", id)
		}
		seen[id] = true
	}
	if len(seen) != writers*perWriter {
		t.Errorf("%d distinct attempt IDs, want %d", len(seen), writers*perWriter)
	}

	// Each learner had 4 writers; each writer made 10 attempts over steps
	// 1,2,3 (4, 3 and 3 of them) and passed step 1 (i = 9) on its last.
	for l := range 5 {
		learner := fmt.Sprintf("learner-%d", l)
		ps, err := dbs[0].LessonProgress(ctx, learner, "k8s/scale")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, fmt.Sprintf("step %d: %d attempts, passed %v, %d hints", p.Step, p.Attempts, p.Passed, p.HintsShown))
		}
		want := []string{
			"step 1: 16 attempts, passed true, 2 hints",
			"step 2: 12 attempts, passed false, 2 hints",
			"step 3: 12 attempts, passed false, 2 hints",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %q, want %q", learner, got, want)
		}
		as, err := dbs[1].Attempts(ctx, learner, "k8s/scale", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 40 {
			t.Errorf("%s: %d attempts stored, want 40", learner, len(as))
		}
	}
}
