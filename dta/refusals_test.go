package dta

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
)

func auditCount(t *testing.T, st *Store, identity, result string) (n int, details []string) {
	t.Helper()
	es, err := st.AuditLog(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Identity == identity && e.Result == result {
			n++
			details = append(details, e.Detail)
		}
	}
	return n, details
}

// TestRefusedCredentialsMetered: a revoked identity and a used code
// hammering the D-TA write a bounded number of audit rows (the first
// refusal, then one summary with the count), and past the per-credential
// limit they are answered 429 without touching the store.
func TestRefusedCredentialsMetered(t *testing.T) {
	d := startDTA(t, nil)
	ctx := context.Background()
	codes := codesFor(t, []*testDTA{d}, dtawire.KindClient, "rev")
	e, err := dtaclient.Enroll(ctx, nil, codes)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.store.Revoke(dtawire.KindClient, "rev", "stolen", "test"); err != nil {
		t.Fatal(err)
	}
	today := uint64(time.Now().Unix() / 86400)
	revoked, limited := 0, 0
	for range 50 {
		_, _, err := dtaclient.FetchPermits(ctx, nil, e.Renewal, []uint64{today})
		var ae *dtaclient.APIError
		switch {
		case dtaclient.IsCode(err, dtawire.CodeRevoked):
			revoked++
		case errorsAs(err, &ae) && ae.Status == http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("revoked identity: %v", err)
		}
	}
	if revoked != maxRefusalsPerInterval || limited != 50-maxRefusalsPerInterval {
		t.Fatalf("%d revoked, %d limited; want %d and %d", revoked, limited, maxRefusalsPerInterval, 50-maxRefusalsPerInterval)
	}
	usedCode := dtaclient.Credential{Identity: "enroll:" + codes[0].Code.ID.String(), PSK: codes[0].Code.Secret[:]}
	for range 30 {
		var info dtawire.InfoResponse
		dtaclient.Call(ctx, nil, d.addr, usedCode, http.MethodGet, "/v1/info", nil, &info)
	}
	if n, _ := auditCount(t, d.store, "rev", "revoked"); n != 1 {
		t.Fatalf("%d audit rows for 50 refusals of a revoked identity before the interval ended, want 1", n)
	}
	if n, _ := auditCount(t, d.store, "rev", "code_used"); n != 1 {
		t.Fatalf("%d audit rows for 30 uses of a used code, want 1", n)
	}
	// At shutdown (or when the interval ends) one summary row each.
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d.srv.Shutdown(sctx)
	n, details := auditCount(t, d.store, "rev", "revoked")
	if n != 2 || !strings.Contains(details[1], "19 more refusals") {
		t.Fatalf("after the interval: %d rows %q; want the first and a summary of 19 more", n, details)
	}
	if n, details := auditCount(t, d.store, "rev", "code_used"); n != 2 || !strings.Contains(details[1], "more refusals") {
		t.Fatalf("used code after the interval: %d rows %q", n, details)
	}
}

// TestPendingPromotedOnInfo: the first handshake with a rotated secret
// promotes it on GET /v1/info too; the old secret then stops working.
func TestPendingPromotedOnInfo(t *testing.T) {
	d := startDTA(t, nil)
	ctx := context.Background()
	e, err := dtaclient.Enroll(ctx, nil, codesFor(t, []*testDTA{d}, dtawire.KindP2P, "pp"))
	if err != nil {
		t.Fatal(err)
	}
	old := e.Renewal.DTAs[0]
	if err := dtaclient.Rotate(ctx, nil, e.Renewal); err != nil {
		t.Fatal(err)
	}
	nw := e.Renewal.DTAs[0]
	nw.Secret, nw.PendingSecret = nw.PendingSecret, ""
	if _, err := dtaclient.Info(ctx, nil, d.addr, &nw); err != nil {
		t.Fatalf("info with the new secret: %v", err)
	}
	var he *dtaclient.HandshakeError
	if _, err := dtaclient.Info(ctx, nil, d.addr, &old); !errorsAs(err, &he) {
		t.Fatalf("the old secret after the new one was used on /v1/info: %v, want a handshake failure", err)
	}
}

// TestMethodNotAllowed: a known path with the wrong method is 405 with a
// JSON bad_request and an Allow header; an unknown path is 404.
func TestMethodNotAllowed(t *testing.T) {
	d := startDTA(t, nil)
	ctx := context.Background()
	e, err := dtaclient.Enroll(ctx, nil, codesFor(t, []*testDTA{d}, dtawire.KindP2P, "m"))
	if err != nil {
		t.Fatal(err)
	}
	c := mustCred(t, &e.Renewal.DTAs[0])
	var out dtawire.InfoResponse
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/v1/enroll", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/permits", http.StatusMethodNotAllowed},
		{http.MethodPost, "/v1/info", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/nothing", http.StatusNotFound},
	} {
		err := dtaclient.Call(ctx, nil, d.addr, c, tc.method, tc.path, nil, &out)
		var ae *dtaclient.APIError
		if !errorsAs(err, &ae) || ae.Status != tc.status || ae.Code != dtawire.CodeBadRequest {
			t.Errorf("%s %s: %v, want %d bad_request", tc.method, tc.path, err, tc.status)
		}
	}
}

func errorsAs[T any](err error, target *T) bool { return errors.As(err, target) }

// TestStrictRequestJSON: differently-cased and repeated keys are refused.
func TestStrictRequestJSON(t *testing.T) {
	for _, body := range []string{`{"Days":[1]}`, `{"DAYS":[1]}`, `{"days":[1],"days":[2]}`, `{"days":[1],"extra":1}`, `{"days":[1]`} {
		if _, err := dtawire.ParsePermitsRequest([]byte(body)); err == nil {
			t.Errorf("%s accepted", body)
		}
	}
	if r, err := dtawire.ParsePermitsRequest([]byte(`{"days":[1,2]}`)); err != nil || len(r.Days) != 2 {
		t.Fatalf("a valid body: %v", err)
	}
	if _, err := dtaclient.ParseRenewal([]byte(`{"version":1,"kind":"client","identity":"a","dtas":[{"address":"x:1","Address":"y:1"}]}`)); err == nil {
		t.Error("a renewal file with a repeated differently-cased key was accepted")
	}
}
