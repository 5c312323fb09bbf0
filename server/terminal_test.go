package server_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// TestLearnerPath is the foundation's promise: a learner's terminal is a
// real shell, the check fails with a reason before the work and passes
// after it, and the lesson's setup ran.
func TestLearnerPath(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	c := newClient(t, ts)

	term, _, err := c.dialTerminal("tab=0&lesson=demo/hello", "")
	if err != nil {
		t.Fatal(err)
	}
	term.waitStatus("starting")
	term.waitStatus("ready")

	code, res := c.check("demo/hello", `{"step":1}`)
	if code != 200 || res.Passed {
		t.Fatalf("before the work the check must fail: %d %+v", code, res)
	}
	if msg := res.Results[0].Message; !strings.Contains(msg, "exited with code 1") {
		t.Errorf("failure message should say why, got %q", msg)
	}

	marker := fmt.Sprintf("hi-%d", rand.IntN(1_000_000))
	term.typeText("echo " + marker + " && cat ~/setup-marker\n")
	term.waitOutput(marker + "\r\nprepared")

	term.typeText(`echo "hello kubelab" > ~/greeting.txt` + "\n")
	term.typeText("echo done-$((6*7))\n")
	term.waitOutput("done-42")

	code, res = c.check("demo/hello", `{"step":1}`)
	if code != 200 || !res.Passed || !res.Results[0].Passed {
		t.Fatalf("after the work the check must pass: %d %+v", code, res)
	}
	_, body := c.get("/api/progress")
	if !strings.Contains(string(body), `"lesson":"demo/hello","step":1,"passed":true`) {
		t.Fatalf("progress after pass: %s", body)
	}
}

func TestTerminalRefusals(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	c := newClient(t, ts)
	cases := []struct {
		name, query, origin string
		code                int
	}{
		{"hostile origin", "tab=0", "http://evil.example.com", http.StatusForbidden},
		{"bad tab", "tab=99", "", http.StatusBadRequest},
		{"unknown lesson", "lesson=demo/nope", "", http.StatusNotFound},
		{"lesson without terminal", "lesson=demo/reading", "", http.StatusBadRequest},
		{"malformed lesson", "lesson=nope", "", http.StatusBadRequest},
	}
	for _, tc := range cases {
		_, res, err := c.dialTerminal(tc.query, tc.origin)
		if err == nil {
			t.Errorf("%s: dial succeeded, want %d", tc.name, tc.code)
			continue
		}
		if res == nil || res.StatusCode != tc.code {
			got := 0
			if res != nil {
				got = res.StatusCode
			}
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.code)
		}
	}
	// Without a session cookie the socket is refused with a reason.
	res, err := http.Get(ts.URL + "/ws/terminal")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("no cookie: got %d, want 401", res.StatusCode)
	}
}

// TestProgressSurvivesRestart reopens the same data directory.
func TestProgressSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := MustOpenServer(t, dir)
	c := newClient(t, ts)
	if code, res := c.check("demo/hello", `{"step":2,"answers":{"store":[0]}}`); code != 200 || !res.Passed {
		t.Fatalf("quiz: %d %+v", code, res)
	}
	learner := c.cookie()
	ts.Close()
	_ = ts.DB.Close()

	ts2 := MustOpenServer(t, dir)
	c2 := newClient(t, ts2)
	c2.http.Jar.SetCookies(mustURL(ts2.URL), []*http.Cookie{{Name: "kubelab_session", Value: learner, Path: "/"}})
	_, body := c2.get("/api/progress")
	if !strings.Contains(string(body), `"lesson":"demo/hello","step":2,"passed":true`) {
		t.Fatalf("progress after restart: %s", body)
	}
}
