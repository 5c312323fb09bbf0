package server_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/shell"
	"kubelab/server"
)

// drillClock is the server's clock in drill tests, moved by hand.
type drillClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *drillClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *drillClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// openDrillServer serves testdata/drills (the timed/sprint drill, 10m,
// hint cost 2, checks worth 3 + 2 + 1) on the shell provider with clock.
func openDrillServer(t *testing.T) (*testServer, *drillClock) {
	t.Helper()
	clock := &drillClock{now: time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)}
	ts := openServer(t, "", "testdata/drills", func(log *slog.Logger) sandbox.Provider {
		return shell.New(t.TempDir(), log)
	}, func(cfg *server.Config) { cfg.Now = clock.Now })
	return ts, clock
}

type drillState struct {
	Attempt    int64  `json:"attempt"`
	TimeLeftMS int64  `json:"time_left_ms"`
	Running    bool   `json:"running"`
	TimedOut   bool   `json:"timed_out"`
	Score      int    `json:"score"`
	MaxScore   int    `json:"max_score"`
	HintsUsed  int    `json:"hints_used"`
	Review     string `json:"review"`
	Tasks      []struct {
		Step   int  `json:"step"`
		Passed bool `json:"passed"`
		Checks []struct {
			ID      string `json:"id"`
			Passed  bool   `json:"passed"`
			Message string `json:"message"`
		} `json:"checks"`
	} `json:"tasks"`
}

func (c *client) drill(method, path string, wantCode int) drillState {
	c.t.Helper()
	var code int
	var body []byte
	if method == http.MethodPost {
		code, body = c.post("/api/drills/timed/sprint"+path, "application/json", "{}")
	} else {
		code, body = c.get("/api/drills/timed/sprint" + path)
	}
	if code != wantCode {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, code, body, wantCode)
	}
	var st drillState
	if err := json.Unmarshal(body, &st); err != nil {
		c.t.Fatalf("%s %s: %v: %s", method, path, err, body)
	}
	return st
}

// shell opens the learner's terminal on the drill and runs cmd in it.
func (c *client) shell(cmd, marker string) {
	c.t.Helper()
	term, _, err := c.dialTerminal("tab=0&lesson=timed/sprint", "")
	if err != nil {
		c.t.Fatal(err)
	}
	term.waitFor("a terminal", func(_ string, msgs []map[string]any) bool {
		for _, m := range msgs {
			if m["type"] == "status" && (m["state"] == "ready" || m["state"] == "reconnected") {
				return true
			}
		}
		return false
	})
	term.typeText(cmd + "; echo " + marker + "-$((1+1))\n")
	term.waitOutput(marker + "-2")
}

func TestDrillEndToEnd(t *testing.T) {
	t.Parallel()
	ts, clock := openDrillServer(t)
	c := newClient(t, ts)
	c.get("/lessons/timed/sprint") // the CSRF token

	// Nothing started yet.
	if code, body := c.get("/api/drills/timed/sprint"); code != http.StatusNotFound {
		t.Fatalf("before start: %d %s", code, body)
	}
	st := c.drill(http.MethodPost, "/start", http.StatusCreated)
	if !st.Running || st.Score != 0 || st.MaxScore != 6 || st.TimeLeftMS != (10*time.Minute).Milliseconds() || len(st.Tasks) != 2 {
		t.Fatalf("started: %+v", st)
	}

	// Task 1 done in the terminal: +3.
	c.shell(`echo ready > ~/one.txt`, "one")
	clock.Advance(time.Minute)
	if code, res := c.check("timed/sprint", `{"step":1}`); code != 200 || !res.Passed {
		t.Fatalf("check 1: %d %+v", code, res)
	}
	st = c.drill(http.MethodGet, "", http.StatusOK)
	if st.Score != 3 || !st.Tasks[0].Passed || st.Tasks[1].Passed || st.TimeLeftMS != (9*time.Minute).Milliseconds() {
		t.Fatalf("after check 1: %+v", st)
	}
	// Passing it again earns nothing more.
	c.check("timed/sprint", `{"step":1}`)
	if st = c.drill(http.MethodGet, "", http.StatusOK); st.Score != 3 {
		t.Fatalf("check 1 twice: score %d", st.Score)
	}

	// A hint costs 2, the same hint again nothing.
	for range 2 {
		if code, body := c.post("/api/lessons/timed/sprint/hint", "application/json", `{"step":2,"index":0}`); code != 200 {
			t.Fatalf("hint: %d %s", code, body)
		}
	}
	if st = c.drill(http.MethodGet, "", http.StatusOK); st.Score != 1 || st.HintsUsed != 1 {
		t.Fatalf("after hint: %+v", st)
	}

	// The quiz of task 2 scores like any check; the file check fails.
	clock.Advance(time.Minute)
	if code, res := c.check("timed/sprint", `{"step":2,"answers":{"shell":[1]}}`); code != 200 || res.Passed || !res.Results[1].Passed {
		t.Fatalf("check 2: %d %+v", code, res)
	}
	if st = c.drill(http.MethodGet, "", http.StatusOK); st.Score != 2 || st.Tasks[1].Passed {
		t.Fatalf("after quiz: %+v", st)
	}

	// Time runs out: the attempt is over and further checks score nothing.
	clock.Advance(9 * time.Minute)
	c.shell(`echo done > ~/two.txt`, "two")
	if code, res := c.check("timed/sprint", `{"step":2,"answers":{"shell":[1]}}`); code != 200 || !res.Passed {
		t.Fatalf("check 2 late: %d %+v", code, res)
	}
	st = c.drill(http.MethodGet, "", http.StatusOK)
	if st.Running || !st.TimedOut || st.Score != 2 || st.TimeLeftMS != 0 || st.Tasks[1].Passed || st.Review == "" {
		t.Fatalf("after time-out: %+v", st)
	}
	if code, body := c.post("/api/lessons/timed/sprint/hint", "application/json", `{"step":1,"index":0}`); code != 200 {
		t.Fatalf("late hint: %d %s", code, body)
	}
	if st = c.drill(http.MethodGet, "", http.StatusOK); st.Score != 2 || st.HintsUsed != 1 {
		t.Fatalf("late hint was charged: %+v", st)
	}

	// The review: each task, passed or not, the checker's explanation, the
	// solutions, the score and the time used.
	code, body := c.get(st.Review)
	if code != 200 {
		t.Fatalf("review: %d %s", code, body)
	}
	page := string(body)
	for _, want := range []string{
		"Score <strong>2</strong> of 6", "Time used 10m0s of 10m0s", "time ran out",
		"Task 1: a file", "Task 2: another file and a question",
		`~/one.txt says ready</strong> (3/3 points): passed`,
		`~/two.txt says done</strong> (0/2 points): not passed`,
		`(1/1 points): passed`,
		"echo ready &gt; ~/one.txt", "echo done &gt; ~/two.txt",
		"Bash appends to ~/.bash_history", // the quiz's explanation
		"Hints opened: 1 (each cost 2)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("review lacks %q", want)
		}
	}
	if strings.Count(page, "not passed</span>") != 1 {
		t.Errorf("want exactly task 2 not passed:\n%s", page)
	}

	// Another learner may not see it.
	other := newClient(t, ts)
	if code, _ := other.get(st.Review); code != http.StatusNotFound && code != http.StatusForbidden {
		t.Fatalf("someone else's review: %d", code)
	}
}

func TestDrillFinishEarlyAndLeaderboard(t *testing.T) {
	t.Parallel()
	ts, clock := openDrillServer(t)
	// play runs a drill for a new learner: the quiz right or wrong, then
	// finishes after used.
	play := func(quiz string, used time.Duration) (*client, drillState) {
		c := newClient(t, ts)
		c.get("/lessons/timed/sprint")
		c.drill(http.MethodPost, "/start", http.StatusCreated)
		c.check("timed/sprint", `{"step":2,"answers":{"shell":[`+quiz+`]}}`)
		clock.Advance(used)
		st := c.drill(http.MethodPost, "/finish", http.StatusOK)
		if st.Running || st.TimedOut {
			t.Fatalf("finished: %+v", st)
		}
		return c, st
	}
	slow, _ := play("1", 5*time.Minute)
	play("0", time.Minute)
	fast, st := play("1", 2*time.Minute)
	if st.Score != 1 {
		t.Fatalf("score: %+v", st)
	}
	// A finished attempt takes no more points.
	fast.check("timed/sprint", `{"step":2,"answers":{"shell":[1]}}`)
	if code, body := fast.post("/api/drills/timed/sprint/finish", "application/json", "{}"); code != 200 || !strings.Contains(string(body), `"score":1`) {
		t.Fatalf("finish again: %d %s", code, body)
	}

	code, body := slow.get("/api/drills/timed/sprint/leaderboard")
	if code != 200 {
		t.Fatalf("leaderboard: %d %s", code, body)
	}
	var board struct {
		Leaders []struct {
			Rank   int
			Name   string
			You    bool
			Score  int
			UsedMS int64 `json:"used_ms"`
		}
	}
	if err := json.Unmarshal(body, &board); err != nil {
		t.Fatal(err)
	}
	type row struct {
		score int
		used  time.Duration
		you   bool
	}
	want := []row{{1, 2 * time.Minute, false}, {1, 5 * time.Minute, true}, {0, time.Minute, false}}
	if len(board.Leaders) != len(want) {
		t.Fatalf("leaders: %s", body)
	}
	for i, l := range board.Leaders {
		got := row{l.Score, time.Duration(l.UsedMS) * time.Millisecond, l.You}
		if got != want[i] || l.Rank != i+1 || l.Name == "" {
			t.Errorf("rank %d: %+v, want %+v", i+1, l, want[i])
		}
	}
	// Learner IDs are session cookies: never on the board.
	if strings.Contains(string(body), slow.cookie()) {
		t.Fatalf("leaderboard leaks a learner ID: %s", body)
	}
}

func TestDrillBadRequests(t *testing.T) {
	t.Parallel()
	ts, _ := openDrillServer(t)
	c := newClient(t, ts)
	c.get("/lessons/timed/sprint")
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/api/drills/timed/plain/start", http.StatusBadRequest},
		{http.MethodGet, "/api/drills/timed/plain/leaderboard", http.StatusBadRequest},
		{http.MethodPost, "/api/drills/timed/missing/start", http.StatusNotFound},
		{http.MethodPost, "/api/drills/timed/sprint/finish", http.StatusNotFound},
		{http.MethodGet, "/drills/timed/sprint/review/abc", http.StatusBadRequest},
		{http.MethodGet, "/drills/timed/sprint/review/42", http.StatusNotFound},
	}
	for _, tc := range tests {
		var code int
		var body []byte
		if tc.method == http.MethodPost {
			code, body = c.post(tc.path, "application/json", "{}")
		} else {
			code, body = c.get(tc.path)
		}
		if code != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.want)
		}
		if strings.HasPrefix(tc.path, "/api/") && !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s %s: no error message: %s", tc.method, tc.path, body)
		}
	}
	// A running attempt has no review yet: it would show the solutions.
	st := c.drill(http.MethodPost, "/start", http.StatusCreated)
	if code, _ := c.get("/drills/timed/sprint/review/" + jsonInt(st.Attempt)); code != http.StatusConflict {
		t.Fatalf("review of a running attempt: %d", code)
	}
}

// TestDrillPagesHideAnswers: the drill's page and its lesson JSON carry no
// quiz answer, explanation or solution before the drill is over.
func TestDrillPagesHideAnswers(t *testing.T) {
	t.Parallel()
	ts, _ := openDrillServer(t)
	c := newClient(t, ts)
	for _, path := range []string{"/lessons/timed/sprint", "/api/lessons/timed/sprint"} {
		code, body := c.get(path)
		if code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
		if !strings.Contains(string(body), "bash_history") {
			t.Fatalf("%s does not show the quiz", path)
		}
		for _, secret := range []string{"correct", "Bash appends", "echo ready &gt; ~/one.txt", `echo ready > ~/one.txt`, "echo done"} {
			if strings.Contains(string(body), secret) {
				t.Errorf("%s leaks %q", path, secret)
			}
		}
	}
}

// TestDrillBarOnlyOnDrills: the lesson page has the drill bar (Start,
// the time limit) on a drill and not on an ordinary lesson.
func TestDrillBarOnlyOnDrills(t *testing.T) {
	t.Parallel()
	ts, _ := openDrillServer(t)
	c := newClient(t, ts)
	_, body := c.get("/lessons/timed/sprint")
	for _, want := range []string{`id="drill-start"`, `data-time-limit="600000"`, "each hint costs 2 points"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("drill page lacks %q", want)
		}
	}
	if _, body := c.get("/lessons/timed/plain"); strings.Contains(string(body), `id="drill"`) {
		t.Errorf("an ordinary lesson has the drill bar")
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestDrillClassroomLeaderboard: a classroom's board ranks its members
// only; its members and instructor see it, other learners get 403; the
// review page shows everyone's board and the learner's classrooms'.
func TestDrillClassroomLeaderboard(t *testing.T) {
	t.Parallel()
	clock := &drillClock{now: time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)}
	ts := openServer(t, "", "testdata/drills", shellProvider(t), func(cfg *server.Config) {
		cfg.Auth = server.AuthLocal
		cfg.Now = clock.Now
	})
	createUsers(t, ts)
	browsers := map[string]*client{}
	for _, name := range []string{"alice", "bob", "ines"} {
		browsers[name] = newBrowser(t, ts)
		browsers[name].login(name, name+"-pw", "")
	}
	classID, code := createClass(t, browsers["ines"], `{"name":"Sprinters","lessons":["timed"]}`)
	join(t, browsers["alice"], code)
	var reviews = map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		c := browsers[name]
		c.get("/lessons/timed/sprint")
		c.drill(http.MethodPost, "/start", http.StatusCreated)
		c.check("timed/sprint", `{"step":2,"answers":{"shell":[1]}}`)
		clock.Advance(time.Minute)
		reviews[name] = c.drill(http.MethodPost, "/finish", http.StatusOK).Review
	}
	path := "/api/drills/timed/sprint/leaderboard?classroom=" + classID
	for _, who := range []string{"alice", "ines"} {
		status, body := browsers[who].get(path)
		if status != http.StatusOK || !strings.Contains(string(body), `"name":"alice"`) || strings.Contains(string(body), `"name":"bob"`) {
			t.Errorf("%s: classroom board = %d %s; want alice only", who, status, body)
		}
	}
	if status, body := browsers["bob"].get(path); status != http.StatusForbidden {
		t.Errorf("bob, not a member: classroom board = %d %s; want 403", status, body)
	}
	if status, _ := browsers["bob"].get("/api/drills/timed/sprint/leaderboard?classroom=nope"); status != http.StatusNotFound {
		t.Errorf("unknown classroom: %d, want 404", status)
	}
	_, _, page := browsers["alice"].getPage(reviews["alice"])
	for _, want := range []string{"Leaderboard: Everyone", "Leaderboard: Sprinters", "alice (you)", "bob"} {
		if !strings.Contains(page, want) {
			t.Errorf("alice's review page lacks %q:\n%s", want, page)
		}
	}
}
