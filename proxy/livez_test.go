package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// /livez is the process, /healthz the path to the target: a down target
// or a drain makes the proxy unready, never dead.
func TestLivezIsTheProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there: the target is down
	h := &StatusHandler{Target: dead, Metrics: NewMetrics()}
	get := func(path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code
	}
	if c := get("/healthz"); c != http.StatusServiceUnavailable {
		t.Fatalf("/healthz with the target down: %d, want 503", c)
	}
	if c := get("/livez"); c != http.StatusOK {
		t.Fatalf("/livez with the target down: %d, want 200", c)
	}
	h.SetDraining()
	if c := get("/livez"); c != http.StatusOK {
		t.Fatalf("/livez while draining: %d, want 200", c)
	}
}
