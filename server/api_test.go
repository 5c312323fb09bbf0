package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	res, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("healthz: %d %q", res.StatusCode, b)
	}
}

func TestFirstVisitSetsSessionCookie(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	res, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var found bool
	for _, c := range res.Cookies() {
		if c.Name == "kubelab_session" {
			found = true
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || len(c.Value) != 32 {
				t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, 32 hex chars", c)
			}
		}
	}
	if !found {
		t.Fatal("no kubelab_session cookie on first visit")
	}
}

func TestCatalogAndLessonPages(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	c := newClient(t, ts)
	code, body := c.get("/")
	if code != 200 || !strings.Contains(string(body), "Hello terminal") || !strings.Contains(string(body), `href="/lessons/demo/hello"`) {
		t.Fatalf("catalog: %d\n%s", code, body)
	}
	code, body = c.get("/lessons/demo/hello")
	page := string(body)
	if code != 200 {
		t.Fatalf("lesson page: %d\n%s", code, body)
	}
	for _, want := range []string{`class="run"`, `class="check primary"`, `data-step="1"`, "Which component stores", `id="terminals"`} {
		if !strings.Contains(page, want) {
			t.Errorf("lesson page lacks %q", want)
		}
	}
	for _, secret := range []string{"correct", "prepared", "etcd is the key-value store"} {
		if strings.Contains(page, secret) {
			t.Errorf("lesson page leaks %q", secret)
		}
	}
	code, body = c.get("/lessons/demo/reading")
	if code != 200 || strings.Contains(string(body), `id="terminals"`) {
		t.Fatalf("a sandbox: none lesson must have no terminal: %d", code)
	}
	code, body = c.get("/lessons/demo/nope")
	if code != 404 || !strings.Contains(string(body), "no lesson demo/nope") {
		t.Fatalf("unknown lesson page: %d %s", code, body)
	}
	code, _ = c.get("/nothing/here")
	if code != 404 {
		t.Fatalf("unknown page: %d", code)
	}
}

func TestAPITracks(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	c := newClient(t, ts)
	code, body := c.get("/api/tracks")
	if code != 200 {
		t.Fatalf("tracks: %d %s", code, body)
	}
	var got struct {
		Tracks []struct {
			ID      string
			Lessons []struct {
				ID, Slug, Title, Sandbox string
				Minutes, Steps           int
			}
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Tracks) != 1 || got.Tracks[0].ID != "demo" || len(got.Tracks[0].Lessons) != 2 {
		t.Fatalf("tracks: %s", body)
	}
	l := got.Tracks[0].Lessons[0]
	if l.ID != "demo/hello" || l.Slug != "hello" || l.Sandbox != "shell" || l.Minutes != 5 || l.Steps != 2 {
		t.Fatalf("lesson summary: %+v", l)
	}
}

func TestAPILessonHidesAnswers(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	c := newClient(t, ts)
	code, body := c.get("/api/lessons/demo/hello")
	if code != 200 {
		t.Fatalf("lesson: %d %s", code, body)
	}
	var got struct {
		ID    string
		Steps []struct {
			Num    int
			Title  string
			HTML   string
			Hints  int
			Checks []struct {
				ID, Title, Kind, Question string
				Options                   []string
			}
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Steps) != 2 || got.Steps[0].Title != "Write a greeting" || got.Steps[0].Hints != 2 {
		t.Fatalf("steps: %s", body)
	}
	if c := got.Steps[0].Checks[0]; c.ID != "greeting" || c.Kind != "command" {
		t.Fatalf("check: %+v", c)
	}
	if q := got.Steps[1].Checks[0]; q.Kind != "quiz" || len(q.Options) != 3 || q.Options[0] != "etcd" {
		t.Fatalf("quiz: %+v", q)
	}
	for _, secret := range []string{"correct", "solution", "prepared", "key-value store behind", "Use echo and redirect"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("lesson JSON leaks %q: %s", secret, body)
		}
	}
	code, body = c.get("/api/lessons/demo/missing")
	if code != 404 || !strings.Contains(string(body), `"error"`) {
		t.Fatalf("unknown lesson: %d %s", code, body)
	}
}

func TestCheckBadInput(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	c := newClient(t, ts)
	cases := []struct {
		name, path, ctype, body string
		code                    int
		msg                     string
	}{
		{"not json", "demo/hello", "application/json", "{", 400, "bad JSON body"},
		{"unknown field", "demo/hello", "application/json", `{"step":1,"bogus":2}`, 400, "unknown field"},
		{"step zero", "demo/hello", "application/json", `{"step":0}`, 400, "step 0 is out of range: lesson demo/hello has steps 1 to 2"},
		{"step too big", "demo/hello", "application/json", `{"step":9}`, 400, "step 9 is out of range"},
		{"wrong type", "demo/hello", "application/json", `{"step":"one"}`, 400, "bad JSON body"},
		{"not json type", "demo/hello", "text/plain", `{"step":1}`, 415, "must be JSON"},
		{"unknown quiz", "demo/hello", "application/json", `{"step":2,"answers":{"nope":[0]}}`, 400, `step 2 has no quiz "nope"`},
		{"unknown lesson", "demo/missing", "application/json", `{"step":1}`, 404, "no lesson demo/missing"},
		{"too large", "demo/hello", "application/json", `{"step":1,"answers":{"x":[` + strings.Repeat("1,", 40000) + `1]}}`, 413, "larger than"},
	}
	for _, tc := range cases {
		code, body := c.post("/api/lessons/"+tc.path+"/check", tc.ctype, tc.body)
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		if code != tc.code || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s: got %d %s; want %d with %q", tc.name, code, body, tc.code, tc.msg)
		}
	}
	code, body := c.post("/api/lessons/demo/hello/hint", "application/json", `{"step":1,"index":5}`)
	if code != 400 || !strings.Contains(string(body), "hint 5 is out of range: step 1 has 2 hints") {
		t.Errorf("hint out of range: %d %s", code, body)
	}
}

func TestQuizGradedOnServer(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	c := newClient(t, ts)
	code, res := c.check("demo/hello", `{"step":2,"answers":{"store":[1]}}`)
	if code != 200 || res.Passed || len(res.Results) != 1 || res.Results[0].Passed {
		t.Fatalf("wrong answer: %d %+v", code, res)
	}
	if strings.Contains(res.Results[0].Message, "etcd") {
		t.Errorf("a wrong answer must not reveal the right one: %q", res.Results[0].Message)
	}
	code, res = c.check("demo/hello", `{"step":2,"answers":{"store":[0]}}`)
	if code != 200 || !res.Passed || !strings.Contains(res.Results[0].Message, "etcd is the key-value store") {
		t.Fatalf("right answer: %d %+v", code, res)
	}
	code, body := c.get("/api/progress")
	if code != 200 || !strings.Contains(string(body), `"lesson":"demo/hello","step":2,"passed":true`) {
		t.Fatalf("progress: %d %s", code, body)
	}
}

func TestCommandCheckWithoutSandboxSaysWhy(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	c := newClient(t, ts)
	code, res := c.check("demo/hello", `{"step":1}`)
	if code != 200 || res.Passed || !strings.Contains(res.Results[0].Message, "your sandbox is not running") {
		t.Fatalf("%d %+v", code, res)
	}
	if res.Results[0].Hint != "The file must start with the word hello." {
		t.Errorf("a failed check carries its hint, got %q", res.Results[0].Hint)
	}
}

func TestHintsAreRecorded(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	c := newClient(t, ts)
	code, body := c.post("/api/lessons/demo/hello/hint", "application/json", `{"step":1,"index":0}`)
	if code != 200 || !strings.Contains(string(body), "Use echo and redirect") || !strings.Contains(string(body), `"shown":1`) {
		t.Fatalf("hint: %d %s", code, body)
	}
	_, page := c.get("/lessons/demo/hello")
	if !strings.Contains(string(page), "Use echo and redirect") {
		t.Error("a hint already shown must be on the page after a reload")
	}
	if n := strings.Count(string(page), `class="hint-text"`); n != 1 {
		t.Errorf("one hint was asked for; the page shows %d", n)
	}
}
