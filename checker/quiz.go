package checker

import (
	"errors"
	"slices"
	"strings"
)

// QuizOption is one answer of a quiz. Correct never leaves the server.
type QuizOption struct {
	Text    string
	Correct bool
}

// GradeQuiz grades the options a learner chose (indexes into options). It
// passes when the chosen set is exactly the set of correct options. The
// message never says which options are correct: on a pass it is "correct"
// followed by explain, on a failure "not quite: ..." with a nudge.
func GradeQuiz(id, title string, options []QuizOption, chosen []int, explain string) Result {
	res := Result{ID: id, Title: title}
	var correct []int
	for i, o := range options {
		if o.Correct {
			correct = append(correct, i)
		}
	}
	if len(correct) == 0 {
		res.Message = "this quiz cannot be graded: it has no correct answer"
		res.Err = errors.New("quiz " + id + " has no correct option")
		return res
	}
	picked := slices.Clone(chosen)
	slices.Sort(picked)
	picked = slices.Compact(picked)
	if len(picked) == 0 {
		res.Message = "choose an answer"
		return res
	}
	for _, i := range picked {
		if i < 0 || i >= len(options) {
			res.Message = "choose an answer from the list"
			return res
		}
	}
	if slices.Equal(picked, correct) {
		res.Passed = true
		res.Message = "correct"
		if e := strings.TrimSpace(explain); e != "" {
			res.Message += ": " + e
		}
		return res
	}
	wrong := 0
	for _, i := range picked {
		if !options[i].Correct {
			wrong++
		}
	}
	switch {
	case len(correct) == 1 && len(picked) > 1:
		res.Message = "not quite: only one answer is right; choose one"
	case len(correct) == 1:
		res.Message = "not quite: that is not the right answer; read the section again and try another"
	case wrong == 0:
		res.Message = "not quite: more than one answer is right; choose all of them"
	default:
		res.Message = "not quite: at least one of your choices is wrong"
	}
	return res
}
