package kind

import (
	"log/slog"
	"os"
	"testing"
	"time"
)

// A creation's lease names its network in kind's variable until kind's
// warning says it was read; the next creation then gets its own.
func TestKindNetworkLease(t *testing.T) {
	t.Setenv(kindNetworkEnv, "before")
	release := leaseKindNetwork("kl-a")
	if got := os.Getenv(kindNetworkEnv); got != "kl-a" {
		t.Fatalf("%s = %q during the lease, want kl-a", kindNetworkEnv, got)
	}
	next := make(chan string)
	released := make(chan struct{})
	go func() {
		defer close(released)
		r := leaseKindNetwork("kl-b")
		next <- os.Getenv(kindNetworkEnv)
		r()
	}()
	select {
	case got := <-next:
		t.Fatalf("a second lease started (%q) before kind read the first", got)
	case <-time.After(50 * time.Millisecond):
	}
	kl := &kindLogger{logger: slog.New(slog.DiscardHandler), networkRead: release}
	kl.Warn("Some other warning")
	select {
	case got := <-next:
		t.Fatalf("an unrelated warning ended the lease (second lease saw %q)", got)
	case <-time.After(50 * time.Millisecond):
	}
	kl.Warn("WARNING: Overriding docker network due to KIND_EXPERIMENTAL_DOCKER_NETWORK")
	if got := <-next; got != "kl-b" {
		t.Errorf("second lease saw %q, want kl-b", got)
	}
	<-released
	release() // again: nothing happens
	if got := os.Getenv(kindNetworkEnv); got != "before" {
		t.Errorf("%s = %q after both leases, want the value from before", kindNetworkEnv, got)
	}
}

// The firewall's interface pattern matches every sandbox bridge.
func TestBridgeMatch(t *testing.T) {
	if want := bridgePrefix[:len(bridgePrefix)-1] + "+"; bridgeMatch != want {
		t.Errorf("bridgeMatch = %q, want %q (bridgePrefix %q)", bridgeMatch, want, bridgePrefix)
	}
}

// raiseInotify raises limits that are too low and leaves high ones.
func TestRaiseInotify(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(dir+"/fs/inotify", 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, v string) {
		if err := os.WriteFile(dir+"/fs/inotify/"+name, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("max_user_instances", "128")
	write("max_user_watches", "1048576")
	raiseInotify(dir, slog.New(slog.DiscardHandler))
	for name, want := range map[string]string{"max_user_instances": "512", "max_user_watches": "1048576\n"} {
		got, _ := os.ReadFile(dir + "/fs/inotify/" + name)
		if string(got) != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}
