package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkPages measures the server time of the catalog and a lesson page
// for a learner with a session (go test -bench Pages ./server).
func BenchmarkPages(b *testing.B) {
	for _, path := range []string{"/", "/lessons/demo/hello", "/api/tracks"} {
		b.Run(path, func(b *testing.B) {
			ts := MustOpenServer(b, "")
			h := ts.Config.Handler
			req := httptest.NewRequest("GET", path, nil)
			req.AddCookie(&http.Cookie{Name: "kubelab_session", Value: "0123456789abcdef0123456789abcdef"})
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%s: %d", path, w.Code)
				}
			}
		})
	}
}
