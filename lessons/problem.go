package lessons

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a lesson source, at a file and line.
// Line is 1-based; 0 means the problem concerns the whole file (a bad file
// name, a missing track.yaml).
type Problem struct {
	File string
	Line int
	Msg  string
}

// String is "file:line: msg", the form editors and terminals make
// clickable. A whole-file problem (Line 0) is "file: msg".
func (p Problem) String() string {
	if p.Line <= 0 {
		return p.File + ": " + p.Msg
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// ErrorList is every problem found while loading lessons, sorted by file
// then line. Loaders return it as a *ErrorList so callers can get at each
// problem with errors.As.
type ErrorList []Problem

// Error is each problem's String on its own line.
func (e *ErrorList) Error() string {
	lines := make([]string, len(*e))
	for i, p := range *e {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems by file, then line, keeping the order in
// which problems of the same line were found.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if c := cmp.Compare(a.File, b.File); c != 0 {
			return c
		}
		return cmp.Compare(a.Line, b.Line)
	})
}

// errorList returns nil when there are no problems, else the sorted
// problems as a *ErrorList.
func errorList(ps []Problem) error {
	if len(ps) == 0 {
		return nil
	}
	list := ErrorList(slices.Clone(ps))
	sortProblems(list)
	return &list
}

// problems collects the problems of one file.
type problems struct {
	file string
	list []Problem
}

// add records a problem at line.
func (p *problems) add(line int, format string, args ...any) {
	p.list = append(p.list, Problem{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}
