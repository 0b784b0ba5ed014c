package dta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// The handshake's read of a credential stands in for the re-check of the
// connection's first request only, and only within freshCheck of the read;
// every other request reads the store again.
func TestConnRecFreshOnce(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var r connRec
	if _, ok := r.takeFresh(t0); ok {
		t.Fatal("fresh before any handshake read")
	}
	r.setCredential([]byte("psk"), ErrRevoked, t0)
	if st, ok := r.takeFresh(t0.Add(freshCheck / 2)); !ok || !errors.Is(st, ErrRevoked) {
		t.Fatalf("first request: %v %v", st, ok)
	}
	if _, ok := r.takeFresh(t0.Add(freshCheck / 2)); ok {
		t.Fatal("the handshake's read used for a second request")
	}
	r.setCredential([]byte("psk"), nil, t0)
	if _, ok := r.takeFresh(t0.Add(freshCheck)); ok {
		t.Fatal("the handshake's read used past freshCheck")
	}
	r.setCredential([]byte("psk"), nil, t0)
	if _, ok := r.takeFresh(t0.Add(-time.Second)); ok {
		t.Fatal("the handshake's read used with the clock gone back")
	}
	var none connRec
	none.setCredential(nil, nil, t0) // lookup failed: nothing recorded
	if _, ok := none.takeFresh(t0); ok || none.samePSK(nil) {
		t.Fatal("a failed lookup recorded")
	}
}

// TestRevokedBetweenHandshakeAndRequest: a revocation committed after the
// handshake read the credential, before the connection's first request
// (which uses that read, the clock standing still), is still refused: the
// permit is issued only by the statement that re-checks the revocation and
// writes the audit row.
func TestRevokedBetweenHandshakeAndRequest(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return start }
	d := startDTA(t, now)
	e, err := dtaclient.Enroll(context.Background(), &dtaclient.ClientOptions{Now: now}, codesFor(t, []*testDTA{d}, dtawire.KindClient, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	k := dialKeptAlive(t, d.addr, &e.Renewal.DTAs[0], now)
	if err := d.store.Revoke(dtawire.KindClient, "bob", "lost laptop", "test"); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"days":[%d]}`, pairing.Day(start))
	req := fmt.Sprintf("POST /v1/permits HTTP/1.1\r\nHost: dta\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	if _, err := k.c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(data), dtawire.CodeRevoked) {
		t.Fatalf("permits for an identity revoked after the handshake: %d %s", resp.StatusCode, data)
	}
	var n int
	if err := d.store.queryRow(`SELECT COUNT(*) FROM audit WHERE action='permits' AND result='revoked'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d refusals audited (%v), want 1", n, err)
	}
}
