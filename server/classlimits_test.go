package server_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"kubelab/sandbox"
	"kubelab/sandbox/shell"
	"kubelab/server"
)

// specRecorder is a provider that records the specs it is asked to create.
type specRecorder struct {
	sandbox.Provider
	mu    sync.Mutex
	specs map[string]sandbox.Spec // by owner
}

func (r *specRecorder) Create(ctx context.Context, id string, spec sandbox.Spec, progress sandbox.ProgressFunc) (sandbox.Sandbox, error) {
	r.mu.Lock()
	r.specs[spec.Owner] = spec
	r.mu.Unlock()
	return r.Provider.Create(ctx, id, spec, progress)
}

// TestClassroomLimitsReachTheSandbox: a classroom's per-learner CPU and
// memory limits are the ceiling of its members' sandboxes for its lessons;
// a learner in no classroom gets the server's limits.
func TestClassroomLimitsReachTheSandbox(t *testing.T) {
	t.Parallel()
	rec := &specRecorder{specs: map[string]sandbox.Spec{}}
	ts := openServer(t, "", "testdata/lessons", func(log *slog.Logger) sandbox.Provider {
		rec.Provider = shell.New(t.TempDir(), log)
		return rec
	}, func(cfg *server.Config) { cfg.Auth = server.AuthLocal })
	users := createUsers(t, ts)
	browsers := map[string]*client{}
	for _, name := range []string{"alice", "bob", "ines"} {
		browsers[name] = newBrowser(t, ts)
		browsers[name].login(name, name+"-pw", "")
	}
	_, code := createClass(t, browsers["ines"], `{"name":"Small","lessons":["demo/hello"],"cpu_millis":500,"memory_mib":768}`)
	join(t, browsers["alice"], code)
	for _, name := range []string{"alice", "bob"} {
		term, _, err := browsers[name].dialTerminal("tab=0&lesson=demo/hello", "")
		if err != nil {
			t.Fatal(err)
		}
		term.waitStatus("ready")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got, want := rec.specs[users["alice"].ID].Cap, (sandbox.Resources{Memory: 768 << 20, CPUs: 0.5}); got != want {
		t.Errorf("alice's sandbox cap = %+v, want the classroom's %+v", got, want)
	}
	if got := rec.specs[users["bob"].ID].Cap; got != (sandbox.Resources{}) {
		t.Errorf("bob, in no classroom: cap = %+v, want none", got)
	}
}
