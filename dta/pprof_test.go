package dta

import (
	"net/http"
	"strings"
	"testing"
)

// TestStatusPprof: `ta serve --status-pprof` serves Go's profiles on the
// status listener; without the flag they are not there, and the flag
// without --status is refused (a profile endpoint must never appear on the
// API's listener).
func TestStatusPprof(t *testing.T) {
	d := newDTADir(t, t.TempDir(), 1)
	get := func(p *serveProc, path string) int {
		resp, err := http.Get("http://" + p.status + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	plain := d.serve(t)
	if c := get(plain, "/debug/pprof/cmdline"); c != http.StatusNotFound {
		t.Fatalf("profiles served without --status-pprof: %d", c)
	}
	plain.term(t)
	prof := d.serve(t, "--status-pprof")
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		if c := get(prof, path); c != http.StatusOK {
			t.Fatalf("%s: %d", path, c)
		}
	}
	prof.term(t)
	_, errOut, err := runMtls(t, d.dir, "ta", "serve", "--master", d.share, "--db", d.db, "--listen", "127.0.0.1:0", "--status-pprof")
	if err == nil || !strings.Contains(errOut, "--status-pprof") || !strings.Contains(errOut, "needs --status") {
		t.Fatalf("--status-pprof without --status: %v\n%s", err, errOut)
	}
}
