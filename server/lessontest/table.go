package lessontest

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints a lesson's report as a table: one row per step with its
// checks, what they did before and after the solution, and the seconds it
// took; then the problems, each on a line of its own.
func WriteTable(w io.Writer, r Report) {
	status := "ok"
	switch {
	case r.Skipped != "":
		status = "NOT RUN: " + r.Skipped
	case !r.OK():
		status = "FAILED"
	}
	for i, e := range r.Earlier {
		fmt.Fprintf(w, "\n[attempt %d of %d]", i+1, len(r.Earlier)+1)
		WriteTable(w, e)
	}
	if len(r.Earlier) > 0 {
		status += fmt.Sprintf(" on attempt %d, after %d failed", len(r.Earlier)+1, len(r.Earlier))
	}
	fmt.Fprintf(w, "\n%s  (%s, %.1fs)\n", r.Lesson, status, r.Elapsed.Seconds())
	if r.Err != nil {
		fmt.Fprintf(w, "  error: %v\n", r.Err)
	}
	if len(r.Steps) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  step\tchecks\tbefore\tafter\tseconds\ttitle")
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%.1f\t%s\n", s.Num, s.Checks, s.Before, s.After, s.Elapsed.Seconds(), s.Title)
	}
	tw.Flush()
	for _, s := range r.Steps {
		for _, p := range s.Problems {
			fmt.Fprintf(w, "  step %d: %s\n", s.Num, p)
		}
	}
}
