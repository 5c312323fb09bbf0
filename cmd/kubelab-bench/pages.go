package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// benchPages times the catalog and a lesson page at 50 concurrent clients,
// beside /healthz on the same server: the floor of the HTTP stack.
func benchPages(ctx context.Context, c config, r *report) error {
	srv, err := startInproc(ctx)
	if err != nil {
		return err
	}
	defer srv.close()
	cookie, err := cookieFor(srv.url)
	if err != nil {
		return err
	}
	lesson := "/lessons/docker/welcome"
	res, err := http.Get(srv.url + lesson)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		lesson = "" // the course changed; time the catalog only
		r.note("pages: %s answered %d, lesson page not timed", "/lessons/docker/welcome", res.StatusCode)
	}
	base, _, err := hammer(ctx, srv.url+"/healthz", cookie, c.pageReqs, 50)
	if err != nil {
		return err
	}
	paths := []string{"/"}
	if lesson != "" {
		paths = append(paths, lesson)
	}
	for _, p := range paths {
		lat, bytes, err := hammer(ctx, srv.url+p, cookie, c.pageReqs, 50)
		if err != nil {
			return err
		}
		for _, q := range []float64{50, 99} {
			a, b := percentile(lat, q), percentile(base, q)
			r.add("pages", fmt.Sprintf("GET %s p%.0f at 50 clients (%d requests, %d bytes each)", p, q, c.pageReqs, bytes),
				ms(a), ms(b)+" (/healthz)", ratio(float64(a), float64(b)), "")
		}
	}
	return nil
}

// hammer sends n GETs from conc clients and returns every latency and the
// size of one response body.
func hammer(ctx context.Context, url, cookie string, n, conc int) ([]time.Duration, int64, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	lat := make([]time.Duration, n)
	var size atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				req.Header.Set("Cookie", "kubelab_session="+cookie)
				start := time.Now()
				res, err := client.Do(req)
				if err == nil {
					var k int64
					k, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					size.Store(k)
					if res.StatusCode != 200 {
						err = fmt.Errorf("GET %s: %d", url, res.StatusCode)
					}
				}
				lat[i] = time.Since(start)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return lat, size.Load(), firstErr
}
