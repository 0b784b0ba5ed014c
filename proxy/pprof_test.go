package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStatusPprofOffByDefault: the status listener serves the runtime
// profiles only when asked to (they expose the process's internals).
func TestStatusPprofOffByDefault(t *testing.T) {
	for _, on := range []bool{false, true} {
		h := &StatusHandler{Target: "127.0.0.1:1", NoProbe: true, Pprof: on}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			want := http.StatusNotFound
			if on {
				want = http.StatusOK
			}
			if rec.Code != want {
				t.Errorf("Pprof=%v GET %s: status %d, want %d", on, path, rec.Code, want)
			}
			if on && path == "/debug/pprof/heap?debug=1" && !strings.Contains(rec.Body.String(), "heap profile") {
				t.Errorf("GET %s: not a heap profile: %.100q", path, rec.Body.String())
			}
		}
	}
	// Importing net/http/pprof fills http.DefaultServeMux: nothing in the
	// proxy serves that mux, and the handler above must not fall back to it.
	rec := httptest.NewRecorder()
	(&StatusHandler{NoProbe: true}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/profile?seconds=1", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("CPU profile served without Pprof: %d", rec.Code)
	}
}
