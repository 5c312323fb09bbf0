package kind

import (
	"context"
	"sync"
	"time"
)

// endpointTTL is how long a sandbox's kubeconfig and engine address are
// reused before Docker is asked again. Both change only when the cluster or
// the engine is recreated (Delete and Grow forget them at once) or a
// container restarts with a new address, which this bounds.
const endpointTTL = 30 * time.Second

// endpoints remembers what checkers ask for on every evaluation (the
// kubeconfig costs three docker commands, the engine address one), so a
// step's checks do not pay for them each time.
type endpoints struct {
	mu    sync.Mutex
	now   func() time.Time
	items map[string]endpoint // by sandbox ID and what ("id/kubeconfig")
}

type endpoint struct {
	value string
	at    time.Time
}

// get returns the value remembered under key if it is younger than
// endpointTTL, else fetch's, which it remembers when fetch succeeds.
func (e *endpoints) get(ctx context.Context, key string, fetch func(context.Context) (string, error)) (string, error) {
	e.mu.Lock()
	if e.now == nil {
		e.now = time.Now
	}
	if it, ok := e.items[key]; ok && e.now().Sub(it.at) < endpointTTL {
		e.mu.Unlock()
		return it.value, nil
	}
	e.mu.Unlock()
	v, err := fetch(ctx)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.items == nil {
		e.items = map[string]endpoint{}
	}
	e.items[key] = endpoint{value: v, at: e.now()}
	return v, nil
}

// forget drops everything remembered of sandbox id.
func (e *endpoints) forget(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, what := range []string{"kubeconfig", "engine"} {
		delete(e.items, id+"/"+what)
	}
}
