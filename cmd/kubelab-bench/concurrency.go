package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// child is `kubelab serve` in a process of its own, so its memory and CPU
// can be read from /proc without the clients' share.
type child struct {
	cmd  *exec.Cmd
	url  string
	logs bytes.Buffer
	dir  string
}

func startChild(ctx context.Context, bin string, extra ...string) (*child, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s is missing: run `make build` first (make bench does)", bin)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	dir, err := os.MkdirTemp("", "kubelab-bench-")
	if err != nil {
		return nil, err
	}
	c := &child{url: "http://" + addr, dir: dir}
	args := append([]string{"serve", "--addr", addr, "--data", dir, "--log-level", "warn"}, extra...)
	c.cmd = exec.CommandContext(ctx, bin, args...)
	c.cmd.Stdout, c.cmd.Stderr = &c.logs, &c.logs
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(c.url + "/healthz"); err == nil {
			res.Body.Close()
			return c, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.stop()
	return nil, fmt.Errorf("kubelab serve did not start: %s", c.logs.String())
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	_ = os.RemoveAll(c.dir)
}

// rss is the child's resident memory in bytes.
func (c *child) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpu is the child's user+system CPU time so far.
func (c *child) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// settle is how long the server is left alone before its memory is read.
const settle = 3 * time.Second

func benchConcurrency(ctx context.Context, c config, r *report) error {
	for _, n := range c.terminals {
		if err := concurrencyRun(ctx, c, r, n); err != nil {
			return fmt.Errorf("%d terminals: %w", n, err)
		}
	}
	return nil
}

func concurrencyRun(ctx context.Context, c config, r *report, n int) error {
	// The profiler (on loopback, as an operator would) lets the bench run
	// the server's GC before it reads its memory.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	pprofAddr := ln.Addr().String()
	ln.Close()
	srv, err := startChild(ctx, c.kubelab, "--sandbox", "shell", "--terminal-grace", "1m", "--pprof-addr", pprofAddr)
	if err != nil {
		return err
	}
	defer srv.stop()
	// Warm the server up with one terminal, then take the baseline.
	warm, err := dialTerm(ctx, srv.url)
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	baseFresh := srv.rss()
	baseStats, err := memStats(pprofAddr) // runs a GC
	if err != nil {
		return fmt.Errorf("server memory: %w", err)
	}
	time.Sleep(settle)
	base := srv.rss()

	terms := make([]*wsTerm, n)
	var failed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	start := time.Now()
	for i := range terms {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t, err := dialTerm(ctx, srv.url)
			if err == nil {
				err = t.runUntil("stty -echoctl; cat > /dev/null\n", "/dev/null\r\n", time.Minute)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			terms[i] = t
		}()
	}
	wg.Wait()
	opened := time.Since(start)
	time.Sleep(settle)
	fresh := srv.rss()
	ok := n - failed
	stats, err := memStats(pprofAddr) // runs a GC
	if err != nil {
		return fmt.Errorf("server memory: %w", err)
	}
	time.Sleep(settle)
	idle := srv.rss()
	r.note("server at %d terminals, after a GC: live heap %.1f KiB and goroutine stacks %.1f KiB per terminal (HeapAlloc %d → %d, StackInuse %d → %d bytes)",
		n, float64(stats["HeapAlloc"]-baseStats["HeapAlloc"])/float64(max(ok, 1))/1024,
		float64(stats["Stack"]-baseStats["Stack"])/float64(max(ok, 1))/1024,
		baseStats["HeapAlloc"], stats["HeapAlloc"], baseStats["Stack"], stats["Stack"])
	if c.heapDir != "" {
		if err := saveProfile(pprofAddr, "heap?gc=1", fmt.Sprintf("%s/heap-%d.pb.gz", c.heapDir, n)); err != nil {
			r.note("heap profile at %d terminals: %v", n, err)
		}
		if err := saveProfile(pprofAddr, "goroutine?debug=1", fmt.Sprintf("%s/goroutines-%d.txt", c.heapDir, n)); err != nil {
			r.note("goroutine profile at %d terminals: %v", n, err)
		}
		if res, err := http.Get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=1"); err == nil {
			line, _ := bufio.NewReader(res.Body).ReadString('\n')
			res.Body.Close()
			r.note("server at %d terminals: %s", n, strings.TrimSpace(line))
		}
	}

	// Each terminal echoes a keystroke once a second for 10 s.
	cpu0, t0 := srv.cpu(), time.Now()
	lat := make([][]time.Duration, n)
	for i, t := range terms {
		if t == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i%1000) * time.Millisecond) // spread the keystrokes
			for k := 0; k < 10; k++ {
				ch := byte('a' + k)
				s := time.Now()
				if err := t.send(string(ch)); err != nil {
					return
				}
				for {
					_ = t.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
					typ, data, err := t.conn.ReadMessage()
					if err != nil {
						return
					}
					if typ == websocket.BinaryMessage && bytes.IndexByte(data, ch) >= 0 {
						break
					}
				}
				lat[i] = append(lat[i], time.Since(s))
				time.Sleep(time.Second - time.Since(s))
			}
		}()
	}
	wg.Wait()
	cores := float64(srv.cpu()-cpu0) / float64(time.Since(t0))
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	for _, t := range terms {
		if t != nil {
			t.conn.Close()
		}
	}
	warm.conn.Close()

	per := float64(idle-base) / float64(max(ok, 1))
	r.add("concurrency", fmt.Sprintf("%d terminals: server memory per idle terminal (RSS after a GC, as an idle server has within 2 min)", n),
		fmt.Sprintf("%.1f KiB", per/1024), fmt.Sprintf("%.1f MiB server RSS with 1 terminal", float64(base)/(1<<20)), "", "< 64 KiB")
	r.add("concurrency", fmt.Sprintf("%d terminals: server RSS per terminal right after opening them (their garbage not yet collected)", n),
		fmt.Sprintf("%.1f KiB", float64(fresh-baseFresh)/float64(max(ok, 1))/1024), fmt.Sprintf("%.1f MiB server RSS with 1 terminal", float64(baseFresh)/(1<<20)), "", "")
	r.add("concurrency", fmt.Sprintf("%d terminals: echo p99, 1 keystroke/s each", n),
		ms(percentile(all, 99)), "", "", "p99 < 2 ms (single terminal)")
	r.add("concurrency", fmt.Sprintf("%d terminals: server CPU while echoing", n),
		fmt.Sprintf("%.2f cores", cores), "", "", "")
	r.add("concurrency", fmt.Sprintf("%d terminals: failed connections; all open in", n),
		fmt.Sprintf("%d; %s", failed, secs(opened)), "", "", "0 failed")
	return nil
}

// saveHeap fetches the server's heap profile into path.
// memStats runs a GC in the server and returns its runtime.MemStats as the
// heap profile's text form prints them ("# HeapAlloc = 123"; of "# Stack =
// inuse / sys", the first).
func memStats(addr string) (map[string]int64, error) {
	res, err := http.Get("http://" + addr + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	stats := map[string]int64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), " = ")
		if !ok || strings.ContainsAny(k, " #") {
			continue
		}
		if n, err := strconv.ParseInt(strings.Fields(v + " x")[0], 10, 64); err == nil {
			stats[k] = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if _, ok := stats["HeapAlloc"]; !ok {
		return nil, fmt.Errorf("no HeapAlloc in the server's heap profile")
	}
	return stats, nil
}

// saveProfile saves the server's pprof profile at query (a path under
// /debug/pprof/ with its parameters) into path.
func saveProfile(addr, query, path string) error {
	res, err := http.Get("http://" + addr + "/debug/pprof/" + query)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, res.Body)
	return err
}
