package checker

import "testing"

func TestGradeQuiz(t *testing.T) {
	t.Parallel()
	single := []QuizOption{{Text: "etcd", Correct: true}, {Text: "kubelet"}, {Text: "the scheduler"}}
	multi := []QuizOption{{Text: "Deployment", Correct: true}, {Text: "ConfigMap"}, {Text: "StatefulSet", Correct: true}}
	const explain = "etcd is the key-value store behind the API server."
	tests := []struct {
		name    string
		options []QuizOption
		chosen  []int
		passed  bool
		msg     string
	}{
		{"right", single, []int{0}, true, "correct: " + explain},
		{"wrong", single, []int{1}, false, "not quite: that is not the right answer; read the section again and try another"},
		{"nothing chosen", single, nil, false, "choose an answer"},
		{"out of range", single, []int{7}, false, "choose an answer from the list"},
		{"two for a single answer", single, []int{0, 1}, false, "not quite: only one answer is right; choose one"},
		{"repeated choice counts once", single, []int{0, 0}, true, "correct: " + explain},
		{"all of several", multi, []int{2, 0}, true, "correct: " + explain},
		{"some of several", multi, []int{0}, false, "not quite: more than one answer is right; choose all of them"},
		{"a wrong one among several", multi, []int{0, 1, 2}, false, "not quite: at least one of your choices is wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := GradeQuiz("store", "Where is the state?", tt.options, tt.chosen, explain)
			wantResult(t, got, tt.passed, tt.msg)
			if got.ID != "store" || got.Title != "Where is the state?" || got.Err != nil {
				t.Errorf("got %+v", got)
			}
		})
	}
	got := GradeQuiz("q", "t", single, []int{0}, "")
	wantResult(t, got, true, "correct")
	got = GradeQuiz("q", "t", []QuizOption{{Text: "a"}}, []int{0}, "")
	if got.Passed || got.Err == nil {
		t.Errorf("a quiz without a correct option: got %+v, want a failure with Err", got)
	}
}
