package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestClassrooms(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := t.Context()
	ines, err := db.CreateUser(ctx, "ines", "x", RoleInstructor)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	c, err := db.CreateClassroom(ctx, Classroom{
		Name: " Kubernetes 101 ", Instructor: ines.ID, Lessons: []string{"demo/hello", "basics"},
		StartsAt: start, EndsAt: start.Add(3 * time.Hour), CPUMillis: 500, MemoryMiB: 256,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Code) != CodeLen || strings.Trim(c.Code, codeAlphabet) != "" {
		t.Errorf("code %q is not %d letters of %s", c.Code, CodeLen, codeAlphabet)
	}
	got, err := db.ClassroomByCode(ctx, strings.ToLower(c.Code[:3])+"-"+c.Code[3:])
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.Name != "Kubernetes 101" || len(got.Lessons) != 2 || got.Lessons[1] != "basics" ||
		!got.StartsAt.Equal(start) || !got.EndsAt.Equal(start.Add(3*time.Hour)) || got.CPUMillis != 500 || got.MemoryMiB != 256 {
		t.Errorf("stored classroom = %+v, want %+v", got, c)
	}
	if _, err := db.ClassroomByCode(ctx, "QQQQQQ"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown code: %v, want ErrNotFound", err)
	}
	other, err := db.CreateClassroom(ctx, Classroom{Name: "Other", Instructor: ines.ID})
	if err != nil {
		t.Fatal(err)
	}
	if other.Code == c.Code {
		t.Error("two classrooms share a code")
	}
	if _, err := db.CreateClassroom(ctx, Classroom{Name: "Bad", Instructor: ines.ID, StartsAt: start, EndsAt: start}); !errors.Is(err, ErrInvalid) {
		t.Errorf("ends at start: %v, want ErrInvalid", err)
	}
	if list, err := db.Classrooms(ctx, ines.ID); err != nil || len(list) != 2 {
		t.Errorf("Classrooms = %v, %v; want 2", list, err)
	}

	alice, err := db.CreateUser(ctx, "alice", "x", RoleLearner)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // joining twice is one membership
		if err := db.JoinClassroom(ctx, c.ID, alice.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.JoinClassroom(ctx, c.ID, "0123456789abcdef0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if err := db.JoinClassroom(ctx, "nope", alice.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("join unknown classroom: %v, want ErrNotFound", err)
	}
	m, err := db.Members(ctx, c.ID)
	if err != nil || len(m) != 2 || m[0].Username != "alice" || m[1].Username != "" {
		t.Errorf("Members = %+v, %v", m, err)
	}
	if ok, _ := db.IsMember(ctx, c.ID, alice.ID); !ok {
		t.Error("alice is not a member")
	}
	if ok, _ := db.IsMember(ctx, other.ID, alice.ID); ok {
		t.Error("alice is a member of a class she did not join")
	}
	if ids, _ := db.LearnerClassrooms(ctx, alice.ID); len(ids) != 1 || ids[0] != c.ID {
		t.Errorf("LearnerClassrooms = %v", ids)
	}
	if joined, err := db.JoinedClassrooms(ctx, alice.ID); err != nil || len(joined) != 1 || joined[0].ID != c.ID || joined[0].Name != c.Name {
		t.Errorf("JoinedClassrooms = %+v, %v; want %s only", joined, err, c.ID)
	}
}
