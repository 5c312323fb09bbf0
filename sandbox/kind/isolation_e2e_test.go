//go:build e2e

package kind_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"kubelab/sandbox"
	"kubelab/sandbox/sandboxtest"
)

// TestE2EIsolation: from learner A's workstation nothing of learner B's
// sandbox (workstation, engine, node, API server, kubelet, NodePort) is
// reachable, nor the host's own ports or 169.254.169.254, while A still
// reaches its own engine and B its own API server; then a memory hog and
// a fork bomb in A leave B responsive.
func TestE2EIsolation(t *testing.T) {
	requireDocker(t)
	ctx := t.Context()
	p := newProvider(t)

	idA, idB := sandboxtest.NewID("kl-isoa"), sandboxtest.NewID("kl-isob")
	for _, id := range []string{idA, idB} {
		t.Cleanup(func() { _ = p.Delete(context.Background(), id) })
	}
	type made struct {
		sb  sandbox.Sandbox
		err error
	}
	chB := make(chan made, 1)
	go func() {
		sb, err := p.Create(ctx, idB, sandbox.Spec{Owner: "bob", Kind: sandbox.KindKubernetes, Images: []string{helloImage}}, progressLogger(t, time.Now()))
		chB <- made{sb, err}
	}()
	sbA, err := p.Create(ctx, idA, sandbox.Spec{Owner: "ada", Kind: sandbox.KindDocker}, progressLogger(t, time.Now()))
	if err != nil {
		t.Fatalf("create A: %v", err)
	}
	mb := <-chB
	if mb.err != nil {
		t.Fatalf("create B: %v", mb.err)
	}
	sbB := mb.sb

	// B serves hello on a NodePort, and the host listens on all its addresses.
	res := exec1(t, sbB, `set -e
kubectl create deployment hello --image=`+helloImage+` >/dev/null
kubectl expose deployment hello --port=8080 --type=NodePort >/dev/null
kubectl rollout status deployment/hello --timeout=120s >/dev/null
setsid nohup nc -lk 9999 </dev/null >/dev/null 2>&1 &
kubectl get service hello -o jsonpath='{.spec.ports[0].nodePort}'`)
	if res.ExitCode != 0 {
		t.Fatalf("B's hello service: exit %d: %s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	nodePort := strings.TrimSpace(string(res.Stdout))
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("host\n"))
			c.Close()
		}
	}()
	hostPort := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)

	ip := func(container, network string) string {
		return strings.TrimSpace(run(t, "docker", "inspect", "--format", `{{(index .NetworkSettings.Networks "`+network+`").IPAddress}}`, container))
	}
	gatewayA := strings.TrimSpace(run(t, "docker", "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", idA))
	nodeB := ip(idB+"-control-plane", idB)
	targets := []struct{ what, addr string }{
		{"B's workstation (nc listening)", ip(idB+"-ws", idB) + ":9999"},
		{"B's Docker engine", ip(idB+"-engine", idB) + ":2375"},
		{"B's API server", nodeB + ":6443"},
		{"B's kubelet", nodeB + ":10250"},
		{"B's NodePort (hello)", nodeB + ":" + nodePort},
		{"the host, A's gateway address (a port the host listens on)", gatewayA + ":" + hostPort},
		{"cloud metadata 169.254.169.254", "169.254.169.254:80"},
	}
	for _, a := range hostAddrs(t) {
		targets = append(targets, struct{ what, addr string }{"the host's address " + a, a + ":" + hostPort})
	}

	// Positive controls: each target that should be up is up for its owner.
	if err := httpGetWithin(ctx, "http://"+nodeB+":"+nodePort+"/", time.Minute); err != nil {
		t.Fatalf("control: the host cannot reach B's NodePort: %v", err)
	}
	if r := exec1(t, sbB, "kubectl get --raw /readyz"); r.ExitCode != 0 || !strings.Contains(string(r.Stdout), "ok") {
		t.Fatalf("control: B cannot reach its own API server: %s%s", r.Stdout, r.Stderr)
	}
	if r := exec1(t, sbB, "nc -z -w 3 127.0.0.1 9999 && echo listening"); !strings.Contains(string(r.Stdout), "listening") {
		t.Fatalf("control: B's workstation does not listen on 9999: %s%s", r.Stdout, r.Stderr)
	}
	if r := exec1(t, sbA, "docker version --format '{{.Server.Version}}'"); r.ExitCode != 0 {
		t.Fatalf("control: A cannot reach its own engine: %s", r.Stderr)
	}

	t.Logf("%-62s | %-7s | %s", "from A's workstation to", "reached", "how it failed")
	reached := 0
	for _, tg := range targets {
		host, port, _ := strings.Cut(tg.addr, ":")
		r := exec1(t, sbA, "nc -z -v -w 3 "+host+" "+port+" 2>&1; echo rc=$?")
		out := strings.TrimSpace(string(r.Stdout))
		// "refused" is an answer too: the packet got there.
		ok := strings.HasSuffix(out, "rc=0") || strings.Contains(out, "refused")
		why := strings.TrimSpace(strings.TrimSuffix(out, "rc=1"))
		if why == "" {
			why = "no answer within 3 s"
		}
		if ok {
			reached++
			t.Errorf("A reached %s at %s: %s", tg.what, tg.addr, out)
		}
		t.Logf("%-62s | %-7v | %s", tg.what+" "+tg.addr, ok, why)
	}
	t.Logf("ISOLATION %d targets tried, %d reached", len(targets), reached)

	t.Run("memory hog and fork bomb in A", func(t *testing.T) {
		hog := exec1(t, sbA, "head -c 4G /dev/zero | tail >/dev/null; echo rc=$?")
		t.Logf("memory hog in A (4 GiB against its 512 MiB): %s", strings.TrimSpace(string(hog.Stdout)))
		if !strings.Contains(string(hog.Stdout), "rc=137") {
			t.Errorf("the memory hog was not killed by A's memory limit: %s%s", hog.Stdout, hog.Stderr)
		}
		bomb := exec1(t, sbA, `setsid nohup bash -c ':(){ :|:& };:' >/dev/null 2>&1 & echo started`)
		if !strings.Contains(string(bomb.Stdout), "started") {
			t.Fatalf("fork bomb did not start: %s%s", bomb.Stdout, bomb.Stderr)
		}
		time.Sleep(5 * time.Second)
		pids := strings.TrimSpace(run(t, "docker", "stats", "--no-stream", "--format", "{{.PIDs}}", idA+"-ws"))
		t.Logf("A's workstation runs %s processes (its pids limit holds the bomb)", pids)
		for i := range 3 {
			start := time.Now()
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			r, err := sbB.Exec(rctx, "echo alive; kubectl get nodes --no-headers | wc -l")
			cancel()
			if err != nil || r.ExitCode != 0 || !strings.Contains(string(r.Stdout), "alive") {
				t.Fatalf("B is not responsive while A's fork bomb runs: %v %s%s", err, r.Stdout, r.Stderr)
			}
			t.Logf("FIGURE B answered a command and the API server in %.2f s (try %d, A's fork bomb running)", time.Since(start).Seconds(), i+1)
		}
	})
}

// httpGetWithin GETs url until it answers 200, for up to d.
func httpGetWithin(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Second)
	}
}

// hostAddrs are the host's IPv4 addresses other than loopback and the
// sandbox bridges.
func hostAddrs(t *testing.T) []string {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || strings.HasPrefix(i.Name, "klb-") || strings.HasPrefix(i.Name, "veth") {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				out = append(out, n.IP.String())
			}
		}
		if len(out) >= 3 {
			break
		}
	}
	return out
}
