package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

var d0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func startDrill(t *testing.T, db *DB, learner string, started time.Time) DrillAttempt {
	t.Helper()
	a, err := db.StartDrill(context.Background(), DrillAttempt{
		Learner: learner, Lesson: "drills/d", Started: started, Deadline: started.Add(10 * time.Minute), MaxScore: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDrillScoring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	a := startDrill(t, db, "alice", d0)
	if a.ID == 0 || a.Score != 0 || !a.Running(d0) || a.ClassroomID != "" {
		t.Fatalf("started: %+v", a)
	}
	res := func(check string, passed bool, points int, at time.Duration) (DrillAttempt, error) {
		return db.RecordDrillResult(ctx, DrillResult{Attempt: a.ID, Step: 1, CheckID: check, Passed: passed, Message: check + " says", Points: points, At: d0.Add(at)})
	}
	steps := []struct {
		name      string
		do        func() (DrillAttempt, error)
		wantScore int
	}{
		{"hint before any points: floor at 0", func() (DrillAttempt, error) { return db.RecordDrillHint(ctx, a.ID, 1, 0, 1, d0.Add(time.Second)) }, 0},
		{"failed check earns nothing", func() (DrillAttempt, error) { return res("a", false, 3, 2*time.Second) }, 0},
		{"pass earns points minus the hint", func() (DrillAttempt, error) { return res("a", true, 3, 3*time.Second) }, 2},
		{"a check passes once", func() (DrillAttempt, error) { return res("a", true, 3, 4*time.Second) }, 2},
		{"failing later keeps it passed", func() (DrillAttempt, error) { return res("a", false, 3, 5*time.Second) }, 2},
		{"same hint again is free", func() (DrillAttempt, error) { return db.RecordDrillHint(ctx, a.ID, 1, 0, 1, d0.Add(6*time.Second)) }, 2},
		{"another hint costs", func() (DrillAttempt, error) { return db.RecordDrillHint(ctx, a.ID, 1, 1, 1, d0.Add(7*time.Second)) }, 1},
		{"second check", func() (DrillAttempt, error) { return res("b", true, 2, 8*time.Second) }, 3},
	}
	for _, s := range steps {
		got, err := s.do()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.Score != s.wantScore {
			t.Fatalf("%s: score %d, want %d", s.name, got.Score, s.wantScore)
		}
	}
	// At the deadline nothing more is recorded.
	if _, err := res("c", true, 5, 10*time.Minute); !errors.Is(err, ErrDrillOver) {
		t.Fatalf("result at deadline: %v", err)
	}
	if _, err := db.RecordDrillHint(ctx, a.ID, 1, 2, 1, d0.Add(11*time.Minute)); !errors.Is(err, ErrDrillOver) {
		t.Fatalf("hint after deadline: %v", err)
	}
	rs, err := db.DrillResults(ctx, a.ID)
	if err != nil || len(rs) != 5 {
		t.Fatalf("results: %v %+v", err, rs)
	}
	if rs[1].Points != 3 || rs[2].Points != 0 || rs[1].Message != "a says" || !rs[1].At.Equal(d0.Add(3*time.Second)) {
		t.Fatalf("result rows: %+v", rs)
	}
	hs, err := db.DrillHints(ctx, a.ID)
	if err != nil || len(hs) != 2 {
		t.Fatalf("hints: %v %+v", err, hs)
	}
	// Finishing after the deadline is a time-out at the deadline.
	f, err := db.FinishDrill(ctx, a.ID, d0.Add(12*time.Minute), false)
	if err != nil || !f.TimedOut || !f.Finished.Equal(a.Deadline) || f.Score != 3 || f.Used() != 10*time.Minute {
		t.Fatalf("finish: %v %+v", err, f)
	}
	again, err := db.FinishDrill(ctx, a.ID, d0.Add(13*time.Minute), false)
	if err != nil || again != f {
		t.Fatalf("finish twice: %v %+v", err, again)
	}
	latest, err := db.LatestDrill(ctx, "alice", "drills/d")
	if err != nil || latest != f {
		t.Fatalf("latest: %v %+v", err, latest)
	}
}

func TestDrillFinishedEarlyRefusesResults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	a := startDrill(t, db, "bob", d0)
	f, err := db.FinishDrill(ctx, a.ID, d0.Add(time.Minute), false)
	if err != nil || f.TimedOut || f.Used() != time.Minute {
		t.Fatalf("finish: %v %+v", err, f)
	}
	_, err = db.RecordDrillResult(ctx, DrillResult{Attempt: a.ID, Step: 1, CheckID: "a", Passed: true, Points: 1, At: d0.Add(2 * time.Minute)})
	if !errors.Is(err, ErrDrillOver) {
		t.Fatalf("result after finish: %v", err)
	}
	if _, err := db.DrillAttempt(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing attempt: %v", err)
	}
	if _, err := db.LatestDrill(ctx, "nobody", "drills/d"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing latest: %v", err)
	}
}

func TestStartDrillInvalid(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	for _, a := range []DrillAttempt{
		{Lesson: "x", Started: d0, Deadline: d0.Add(time.Minute)},
		{Learner: "a", Lesson: "x", Started: d0, Deadline: d0},
		{Learner: "a", Lesson: "x", Started: d0, Deadline: d0.Add(time.Minute), MaxScore: -1},
	} {
		if _, err := db.StartDrill(context.Background(), a); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", a, err)
		}
	}
}

func TestDrillLeaderboard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	// play starts an attempt, scores points with one check and finishes it
	// after used.
	play := func(learner string, points int, used time.Duration) DrillAttempt {
		a := startDrill(t, db, learner, d0)
		if points > 0 {
			if _, err := db.RecordDrillResult(ctx, DrillResult{Attempt: a.ID, Step: 1, CheckID: "c", Passed: true, Points: points, At: d0.Add(time.Second)}); err != nil {
				t.Fatal(err)
			}
		}
		f, err := db.FinishDrill(ctx, a.ID, d0.Add(used), false)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	carolBest := play("carol", 4, 5*time.Minute)
	play("carol", 2, time.Minute)
	dave := play("dave", 4, 3*time.Minute) // same score, faster
	erin := play("erin", 1, time.Minute)
	startDrill(t, db, "frank", d0) // unfinished: not on the board
	board, err := db.DrillLeaderboard(ctx, "drills/d", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{dave.ID, carolBest.ID, erin.ID}
	if len(board) != len(want) {
		t.Fatalf("board: %+v", board)
	}
	for i, e := range board {
		if e.Attempt.ID != want[i] || e.Rank != i+1 || e.Attempt.ClassroomID != "" {
			t.Errorf("rank %d: %+v, want attempt %d", i+1, e, want[i])
		}
	}
	top, err := db.DrillLeaderboard(ctx, "drills/d", "", 1)
	if err != nil || len(top) != 1 || top[0].Attempt.ID != dave.ID {
		t.Fatalf("top 1: %v %+v", err, top)
	}

	// A classroom's board ranks its members only.
	ines, err := db.CreateUser(ctx, "ines", "x", RoleInstructor)
	if err != nil {
		t.Fatal(err)
	}
	class, err := db.CreateClassroom(ctx, Classroom{Name: "Drills", Instructor: ines.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, learner := range []string{"carol", "erin"} {
		if err := db.JoinClassroom(ctx, class.ID, learner); err != nil {
			t.Fatal(err)
		}
	}
	classBoard, err := db.DrillLeaderboard(ctx, "drills/d", class.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(classBoard) != 2 || classBoard[0].Attempt.ID != carolBest.ID || classBoard[0].Rank != 1 || classBoard[1].Attempt.ID != erin.ID {
		t.Errorf("classroom board: %+v, want carol's best then erin's", classBoard)
	}
}
