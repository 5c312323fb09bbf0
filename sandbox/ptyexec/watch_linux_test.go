package ptyexec

import (
	"os/exec"
	"sync"
	"testing"
	"time"
)

// A Watcher sees every exit, early or late, under load, and leaves the
// process for Wait to reap with its exit code; its goroutine ends when
// nothing is left to watch, and a later OnExit starts it again.
func TestWatcherOnExit(t *testing.T) {
	t.Parallel()
	var w Watcher
	for round := range 2 {
		const n = 200
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Some exit before they are watched, some after.
				cmd := exec.Command("sh", "-c", "sleep 0.$1; exit 3", "sh", []string{"0", "05", "2"}[i%3])
				if err := cmd.Start(); err != nil {
					errs <- err.Error()
					return
				}
				if i%3 == 0 {
					time.Sleep(50 * time.Millisecond)
				}
				done := make(chan struct{})
				w.OnExit(cmd.Process.Pid, func() { close(done) })
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					errs <- "OnExit missed an exit"
					_ = cmd.Process.Kill()
					return
				}
				if err := cmd.Wait(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
					errs <- "Wait after OnExit: " + cmd.ProcessState.String() + " " + err.Error()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("round %d: %s", round, e)
		}
		// Nothing is watched any more: the goroutine stops.
		deadline := time.Now().Add(10 * time.Second)
		for {
			w.mu.Lock()
			running := w.sig != nil
			w.mu.Unlock()
			if !running {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the watcher still listens with nothing to watch", round)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
