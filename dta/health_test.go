package dta

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtawire"
)

// TestHealthzCached: /healthz answers from counts at most 30 s old, so a
// flood of unauthenticated requests does not scan the store each time.
func TestHealthzCached(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	d := startDTA(t, now)
	h := d.srv.HealthHandler()
	get := func() (int, map[string]any) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		var v map[string]any
		json.Unmarshal(rec.Body.Bytes(), &v)
		return rec.Code, v
	}
	if st, v := get(); st != 200 || v["status"] != "ok" || v["unused_codes"] != 0.0 {
		t.Fatalf("healthz: %d %v", st, v)
	}
	codesFor(t, []*testDTA{d}, dtawire.KindClient, "x")
	if _, v := get(); v["unused_codes"] != 0.0 {
		t.Fatalf("healthz recounted within 30 s: %v", v)
	}
	clock.Store(now().Add(healthCacheFor).UnixNano())
	if _, v := get(); v["unused_codes"] != 1.0 {
		t.Fatalf("healthz after 30 s: %v", v)
	}
	d.store.Close()
	clock.Store(now().Add(healthCacheFor).UnixNano())
	if st, _ := get(); st != http.StatusServiceUnavailable {
		t.Fatalf("healthz with the store closed: %d", st)
	}
}
