package shell

import (
	"os/exec"
	"sync"
	"testing"
	"time"
)

// awaitExit sees every exit, early or late, under load, and leaves the
// process for Wait to reap with its exit code.
func TestAwaitExit(t *testing.T) {
	t.Parallel()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Some exit before the pidfd is watched, some after.
			cmd := exec.Command("sh", "-c", "sleep 0.$1; exit 3", "sh", []string{"0", "05", "2"}[i%3])
			if err := cmd.Start(); err != nil {
				errs <- err.Error()
				return
			}
			if i%3 == 0 {
				time.Sleep(50 * time.Millisecond)
			}
			done := make(chan bool, 1)
			go func() { done <- awaitExit(cmd.Process.Pid) }()
			select {
			case ok := <-done:
				if !ok {
					errs <- "awaitExit returned false on Linux"
				}
			case <-time.After(30 * time.Second):
				errs <- "awaitExit missed an exit"
				_ = cmd.Process.Kill()
				return
			}
			if err := cmd.Wait(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
				errs <- "Wait after awaitExit: " + cmd.ProcessState.String() + " " + err.Error()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
