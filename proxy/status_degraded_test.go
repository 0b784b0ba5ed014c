package proxy

import (
	"errors"
	"net"
	"net/http/httptest"
	"testing"
	"time"
)

// TestStatusDegraded: the Degraded hook of /healthz — an error is 503 with
// its text on one line, a warning is 200 with the warning, nothing is "ok";
// a target that is down is 503 whatever the hook says.
func TestStatusDegraded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var warn string
	var herr error
	clock := time.Unix(1_700_000_000, 0)
	h := &StatusHandler{Target: ln.Addr().String(), Metrics: NewMetrics(), CacheFor: time.Second,
		Degraded: func() (string, error) { return warn, herr }, Now: func() time.Time { return clock }}
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		return rec.Code, rec.Body.String()
	}
	for _, tc := range []struct {
		warn     string
		err      error
		code     int
		body     string
		targetUp bool
	}{
		{"", nil, 200, "ok\n", true},
		{"degraded: tomorrow's time permit is still missing", nil, 200, "degraded: tomorrow's time permit is still missing\n", true},
		{"", errors.New("degraded: no time permit for today;\nlast renewal failed"), 503, "degraded: no time permit for today; last renewal failed\n", true},
		{"", nil, 503, "target unreachable\n", false},
	} {
		warn, herr = tc.warn, tc.err
		if !tc.targetUp {
			ln.Close()
		}
		clock = clock.Add(time.Second) // the cached probe result has expired
		if code, body := get(); code != tc.code || body != tc.body {
			t.Errorf("warn %q err %v target up %v: %d %q; want %d %q", tc.warn, tc.err, tc.targetUp, code, body, tc.code, tc.body)
		}
	}
}
