package server_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"kubelab/server"
	"kubelab/server/store"
)

// createClass has the instructor client create a classroom over the API.
func createClass(t *testing.T, c *client, body string) (id, code string) {
	t.Helper()
	status, b := c.post("/api/classrooms", "application/json", body)
	var res struct{ ID, Code, Join_URL string }
	if err := json.Unmarshal(b, &res); status != http.StatusCreated || err != nil || res.ID == "" || len(res.Code) != store.CodeLen {
		t.Fatalf("create classroom: %d %s", status, b)
	}
	return res.ID, res.Code
}

// join has a learner open the join link and confirm.
func join(t *testing.T, c *client, code string) {
	t.Helper()
	if status, b := c.get("/join/" + code); status != http.StatusOK || !strings.Contains(string(b), `action="/join/`+code+`"`) {
		t.Fatalf("join page: %d %s", status, b)
	}
	if status, b := c.post("/join/"+code, "application/x-www-form-urlencoded", ""); status != http.StatusOK || !strings.Contains(string(b), "Lessons") {
		t.Fatalf("join: %d %s", status, b)
	}
}

type sseEvent struct {
	Name string
	Data string
	At   time.Time
}

// openEvents opens a classroom's event stream as c; it returns the status
// and, on 200, a channel of the events as they arrive.
func openEvents(t *testing.T, c *client, id string) (int, <-chan sseEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/classrooms/"+id+"/events", nil)
	res, err := (&http.Client{Jar: c.http.Jar}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return res.StatusCode, nil
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("event stream Content-Type %q", ct)
	}
	ch := make(chan sseEvent, 100)
	go func() {
		defer res.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" {
					ev.At = time.Now()
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.Name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[len("data: "):]
			}
		}
	}()
	return http.StatusOK, ch
}

// waitSubscribed waits until the classroom has n open streams.
func waitSubscribed(t *testing.T, id string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if server.DashboardSubscribers(id) == n {
			return
		}
	}
	t.Fatalf("classroom %s has %d event streams, want %d", id, server.DashboardSubscribers(id), n)
}

func TestClassroomsNeedAccounts(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, "")
	c := newClient(t, ts)
	for _, p := range []string{"/classrooms", "/join/ABCDEF", "/classrooms/x/dashboard"} {
		if code, b := c.get(p); code != http.StatusBadRequest || !strings.Contains(string(b), "--auth local or --auth oidc") {
			t.Errorf("GET %s with --auth none: %d %s", p, code, b)
		}
	}
	if code, b := c.post("/api/classrooms", "application/json", `{"name":"x"}`); code != http.StatusBadRequest || !strings.Contains(apiError(b), "--auth local") {
		t.Errorf("create with --auth none: %d %s", code, b)
	}
}

func TestClassroomJoinByCodeAndRoles(t *testing.T) {
	t.Parallel()
	ts, _, _ := openLocalServer(t)
	ines, alice, bob := newBrowser(t, ts), newBrowser(t, ts), newBrowser(t, ts)
	ines.login("ines", "ines-pw", "")
	alice.login("alice", "alice-pw", "")
	bob.login("bob", "bob-pw", "")

	// A learner cannot create a classroom.
	if code, b := alice.post("/api/classrooms", "application/json", `{"name":"mine"}`); code != http.StatusForbidden {
		t.Errorf("learner creates a classroom: %d %s", code, b)
	}
	if code, b := ines.post("/api/classrooms", "application/json", `{"name":"x","lessons":["demo/nope"]}`); code != http.StatusBadRequest || !strings.Contains(apiError(b), "demo/nope") {
		t.Errorf("unknown lesson: %d %s", code, b)
	}
	id, code := createClass(t, ines, `{"name":"K8s 101","lessons":["demo/hello"],"cpu_millis":500}`)
	if status, b := ines.get("/classrooms/" + id); status != http.StatusOK || !strings.Contains(string(b), "/join/"+code) || !strings.Contains(string(b), "Hello terminal") || !strings.Contains(string(b), "500m CPU") {
		t.Errorf("instructor's class page: %d %s", status, b)
	}

	// Not a member yet: no class page.
	if status, _ := alice.get("/classrooms/" + id); status != http.StatusForbidden {
		t.Errorf("non-member's class page: %d, want 403", status)
	}
	// A bad code is 404, on the link and on the form.
	if status, _ := alice.get("/join/QQQQQQ"); status != http.StatusNotFound {
		t.Errorf("bad code page: %d, want 404", status)
	}
	alice.get("/join")
	if status, _ := alice.post("/join/QQQQQQ", "application/x-www-form-urlencoded", ""); status != http.StatusNotFound {
		t.Errorf("bad code join: %d, want 404", status)
	}
	// Typing the code (lower case, with a dash) on the form leads to the join page.
	if status, b := alice.get("/join?code=" + strings.ToLower(code[:3]) + "-" + code[3:]); status != http.StatusOK || !strings.Contains(string(b), "Join K8s 101") {
		t.Errorf("code form: %d %s", status, b)
	}
	join(t, alice, code)
	if status, b := alice.get("/classrooms/" + id); status != http.StatusOK || !strings.Contains(string(b), "Hello terminal") || strings.Contains(string(b), code) {
		t.Errorf("member's class page (lessons, no code): %d %s", status, b)
	}

	// Roles: a learner, member or not, gets 403 on the dashboard and its data.
	for _, c := range []*client{alice, bob} {
		for _, p := range []string{"/classrooms/" + id + "/dashboard", "/classrooms/" + id + "/results.csv", "/api/classrooms/" + id + "/grid"} {
			if status, b := c.get(p); status != http.StatusForbidden {
				t.Errorf("learner GET %s: %d %s", p, status, b)
			}
		}
		if status, _ := openEvents(t, c, id); status != http.StatusForbidden {
			t.Errorf("learner's event stream: %d, want 403", status)
		}
		if status, _ := c.post("/api/classrooms/"+id+"/learners/"+alice.learnerID(t)+"/reset", "application/json", "{}"); status != http.StatusForbidden {
			t.Errorf("learner resets a sandbox: %d, want 403", status)
		}
	}
	// Another instructor is not this class's instructor.
	other, err := ts.DB.CreateUser(t.Context(), "olga", cheapHash(t, "olga-pw"), store.RoleInstructor)
	if err != nil {
		t.Fatal(err)
	}
	olga := newBrowser(t, ts)
	olga.login(other.Username, "olga-pw", "")
	if status, _ := olga.get("/classrooms/" + id + "/dashboard"); status != http.StatusForbidden {
		t.Errorf("another instructor's dashboard: %d, want 403", status)
	}
	if status, b := ines.get("/classrooms/" + id + "/dashboard"); status != http.StatusOK || !strings.Contains(string(b), "alice") || !strings.Contains(string(b), "/watch/"+alice.learnerID(t)) {
		t.Errorf("instructor's dashboard: %d %s", status, b)
	}
}

func TestDashboardStreamAndCSV(t *testing.T) {
	t.Parallel()
	ts, _, _ := openLocalServer(t)
	ines, alice, bob := newBrowser(t, ts), newBrowser(t, ts), newBrowser(t, ts)
	ines.login("ines", "ines-pw", "")
	alice.login("alice", "alice-pw", "")
	bob.login("bob", "bob-pw", "")
	id, code := createClass(t, ines, `{"name":"Stream","lessons":["demo"]}`)
	join(t, alice, code)

	status, events := openEvents(t, ines, id)
	if status != http.StatusOK {
		t.Fatalf("event stream: %d", status)
	}
	waitSubscribed(t, id, 1)
	// Bob is in no classroom: his check reaches nobody's dashboard.
	bob.check("demo/hello", `{"step":2,"answers":{"store":[0]}}`)
	start := time.Now()
	if code, res := alice.check("demo/hello", `{"step":2,"answers":{"store":[1]}}`); code != 200 || res.Passed {
		t.Fatalf("alice's wrong answer: %d %+v", code, res)
	}
	if code, res := alice.check("demo/hello", `{"step":2,"answers":{"store":[0]}}`); code != 200 || !res.Passed {
		t.Fatalf("alice's check: %d %+v", code, res)
	}
	aliceID := alice.learnerID(t)
	var got []map[string]any
	for len(got) < 2 {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream closed")
			}
			if ev.Name != "check" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
				t.Fatalf("event %q: %v", ev.Data, err)
			}
			if m["learner"] != aliceID {
				t.Errorf("event for %v, want alice only", m["learner"])
			}
			got = append(got, m)
			if d := ev.At.Sub(start); d > 2*time.Second {
				t.Errorf("event arrived %v after the checks began, want within 2s", d)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("no check event within 2s; got %v", got)
		}
	}
	last := got[1]
	cell, _ := last["cell"].(map[string]any)
	if last["lesson"] != "demo/hello" || last["step"] != 2.0 || last["passed"] != true || cell["attempts"] != 2.0 || cell["passed"] != true {
		t.Errorf("last event %v", last)
	}
	if got[0]["passed"] != false {
		t.Errorf("first event %v, want the failed check", got[0])
	}

	// CSV: one row per learner and step of the track's lessons.
	res, err := ines.http.Get(ines.base + "/classrooms/" + id + "/results.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("CSV Content-Type %q", ct)
	}
	rows, err := csv.NewReader(res.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 3 || strings.Join(rows[0], ",") != "learner,name,lesson,step,step_title,passed,attempts,hints,seconds_on_step" {
		t.Fatalf("CSV:\n%v", rows)
	}
	var found bool
	for _, r := range rows[1:] {
		if r[1] == "bob" {
			t.Errorf("bob is in the CSV but not in the class: %v", r)
		}
		if r[0] == aliceID && r[2] == "demo/hello" && r[3] == "2" {
			found = true
			if r[1] != "alice" || r[5] != "true" || r[6] != "2" || r[7] != "0" {
				t.Errorf("alice's step 2 row = %v", r)
			}
		} else if r[5] != "false" {
			t.Errorf("row %v passed, only alice's step 2 did", r)
		}
	}
	if !found {
		t.Errorf("no row for alice's step 2:\n%v", rows)
	}

}

// TestScriptedClass is the scenario: one instructor and ten
// learners on the shell provider. Each learner joins, writes the greeting
// in their own sandbox's terminal and passes step 1; every pass must reach
// the instructor's event stream within 2 s of its check.
func TestScriptedClass(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts ten shell sandboxes")
	}
	ts, _, _ := openLocalServer(t)
	ines := newBrowser(t, ts)
	ines.login("ines", "ines-pw", "")
	id, code := createClass(t, ines, `{"name":"Scripted","lessons":["demo/hello"]}`)

	const n = 10
	learners := make([]*client, n)
	names := map[string]string{} // learner ID -> username
	for i := range learners {
		name := fmt.Sprintf("learner%02d", i)
		u, err := ts.DB.CreateUser(t.Context(), name, cheapHash(t, name+"-pw"), store.RoleLearner)
		if err != nil {
			t.Fatal(err)
		}
		names[u.ID] = name
		learners[i] = newBrowser(t, ts)
		learners[i].login(name, name+"-pw", "")
		join(t, learners[i], code)
	}
	status, events := openEvents(t, ines, id)
	if status != http.StatusOK {
		t.Fatalf("event stream: %d", status)
	}
	waitSubscribed(t, id, 1)

	var (
		mu      sync.Mutex
		checked = map[string]time.Time{} // learner ID -> when the passing check was sent
		wg      sync.WaitGroup
	)
	for i, c := range learners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			term, _, err := c.dialTerminal("tab=0&lesson=demo/hello", "")
			if err != nil {
				t.Errorf("learner %d terminal: %v", i, err)
				return
			}
			term.waitStatus("ready")
			term.typeText("echo hello-$((6*7)) > ~/greeting.txt; echo done-$((6*7))\n")
			term.waitOutput("done-42")
			var uid string
			for id, name := range names {
				if name == fmt.Sprintf("learner%02d", i) {
					uid = id
				}
			}
			mu.Lock()
			checked[uid] = time.Now()
			mu.Unlock()
			if code, res := c.check("demo/hello", `{"step":1}`); code != 200 || !res.Passed {
				t.Errorf("learner %d check: %d %+v", i, code, res)
			}
		}()
	}

	arrived := map[string]time.Time{}
	timeout := time.After(90 * time.Second)
	for len(arrived) < n {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream closed")
			}
			var m struct {
				Learner, Lesson string
				Step            int
				Passed          bool
			}
			if ev.Name != "check" || json.Unmarshal([]byte(ev.Data), &m) != nil || !m.Passed || m.Lesson != "demo/hello" || m.Step != 1 {
				continue
			}
			if _, ok := names[m.Learner]; !ok {
				t.Errorf("event for unknown learner %s", m.Learner)
			}
			arrived[m.Learner] = ev.At
		case <-timeout:
			t.Fatalf("only %d of %d passes reached the dashboard", len(arrived), n)
		}
	}
	wg.Wait()
	var worst time.Duration
	for uid, at := range arrived {
		mu.Lock()
		sent := checked[uid]
		mu.Unlock()
		d := at.Sub(sent)
		if d > worst {
			worst = d
		}
		if d > 2*time.Second {
			t.Errorf("%s's pass reached the dashboard %v after the check was sent, want within 2s", names[uid], d)
		}
	}
	t.Logf("%d learners, worst check-to-dashboard latency %v (from sending the check, so it includes running it)", n, worst)

	// The grid agrees.
	_, b := ines.get("/api/classrooms/" + id + "/grid")
	var g struct {
		Learners []struct {
			Name    string
			Sandbox string
			Cells   map[string]struct{ Passed bool }
		}
	}
	if err := json.Unmarshal(b, &g); err != nil || len(g.Learners) != n {
		t.Fatalf("grid %s: %v", b, err)
	}
	for _, l := range g.Learners {
		if !l.Cells["demo/hello#1"].Passed || l.Sandbox != "running" {
			t.Errorf("grid row %+v, want step 1 passed and a running sandbox", l)
		}
	}

	// Reset one learner's sandbox.
	first := g.Learners[0]
	var firstID string
	for uid, name := range names {
		if name == first.Name {
			firstID = uid
		}
	}
	if status, b := ines.post("/api/classrooms/"+id+"/learners/"+firstID+"/reset", "application/json", "{}"); status != http.StatusOK {
		t.Errorf("reset: %d %s", status, b)
	}
	if _, ok := ts.Manager.Lookup(firstID); ok {
		t.Error("the sandbox is still there after the reset")
	}
}
