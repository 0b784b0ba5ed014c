package dta

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

func TestEnrollPermitsAndCSHandshake(t *testing.T) {
	dtas := []*testDTA{startDTA(t, nil), startDTA(t, nil), startDTA(t, nil)}
	ctx := context.Background()
	cl, err := dtaclient.Enroll(ctx, nil, codesFor(t, dtas, dtawire.KindClient, "alice@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	sv, err := dtaclient.Enroll(ctx, nil, codesFor(t, dtas, dtawire.KindServer, "api.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	key := cl.Key.(*pairing.CSClientKey)
	srvKey := sv.Key.(*pairing.CSServerSecret)
	if key.IsShare() || len(key.DTAs()) != 3 || srvKey.ID() != "api.example.com" {
		t.Fatalf("combined key: share=%v dtas=%d server id %q", key.IsShare(), len(key.DTAs()), srvKey.ID())
	}
	now := time.Now()
	today := pairing.Day(now)
	if cl.Permits[today] == nil || cl.Permits[today+1] == nil || len(cl.Permits) != 2 {
		t.Fatalf("enrollment permits: %v", slices.Sorted(maps.Keys(cl.Permits)))
	}
	if err := csHandshake(key, cl.Permits[today], srvKey, now, pairing.PermitsRequired); err != nil {
		t.Fatalf("CS handshake with enrolled keys: %v", err)
	}
	// Permits fetched with the renewal credentials work the same.
	ps, _, err := dtaclient.FetchPermits(ctx, nil, cl.Renewal, []uint64{today})
	if err != nil {
		t.Fatal(err)
	}
	if !ps[today].Equal(cl.Permits[today]) {
		t.Fatal("fetched permit differs from the enrollment's")
	}
	// A key from two of three D-TAs fails.
	partial, err := pairing.CombineCSClientKeys(cl.Shares[0].(*pairing.CSClientKey), cl.Shares[1].(*pairing.CSClientKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := csHandshake(partial, nil, srvKey, now, pairing.PermitsOptional); !errors.Is(err, pairing.ErrAuthFailed) {
		t.Fatalf("partial key: got %v, want ErrAuthFailed", err)
	}
}

func TestCodeSingleUseConcurrent(t *testing.T) {
	d := startDTA(t, nil)
	codes := codesFor(t, []*testDTA{d}, dtawire.KindClient, "bob")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, used := 0, 0
	for range 20 {
		wg.Go(func() {
			_, err := dtaclient.Enroll(context.Background(), nil, codes)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case dtaclient.IsCode(err, dtawire.CodeCodeUsed):
				used++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || used != 19 {
		t.Fatalf("20 concurrent uses: %d succeeded, %d code_used; want 1 and 19", ok, used)
	}
}

func TestRevokeRotateWrongKind(t *testing.T) {
	dtas := []*testDTA{startDTA(t, nil), startDTA(t, nil)}
	ctx := context.Background()
	e, err := dtaclient.Enroll(ctx, nil, codesFor(t, dtas, dtawire.KindClient, "carol"))
	if err != nil {
		t.Fatal(err)
	}
	today := pairing.Day(time.Now())
	if err := dtas[1].store.Revoke(dtawire.KindClient, "carol", "lost laptop", "test"); err != nil {
		t.Fatal(err)
	}
	_, _, err = dtaclient.FetchPermits(ctx, nil, e.Renewal, []uint64{today})
	var me dtaclient.MultiError
	if !errors.As(err, &me) || len(me) != 1 || me[0].Fingerprint != dtas[1].srv.Fingerprint().String() || !dtaclient.IsCode(err, dtawire.CodeRevoked) {
		t.Fatalf("revoked at D-TA 2: got %v", err)
	}
	if err := dtas[1].store.Reinstate(dtawire.KindClient, "carol", "test"); err != nil {
		t.Fatal(err)
	}
	// Reinstating does not bring the old renewal secret back: the
	// identity enrolls again with a fresh code.
	if _, _, err := dtaclient.FetchPermits(ctx, nil, e.Renewal, []uint64{today}); !IsHandshakeAlert(err) {
		t.Fatalf("the old secret after reinstate: %v, want a handshake failure", err)
	}
	if e, err = dtaclient.Enroll(ctx, nil, codesFor(t, dtas, dtawire.KindClient, "carol")); err != nil {
		t.Fatalf("re-enrollment after reinstate: %v", err)
	}
	if _, _, err := dtaclient.FetchPermits(ctx, nil, e.Renewal, []uint64{today}); err != nil {
		t.Fatalf("reinstated and re-enrolled: %v", err)
	}
	// Out of range days.
	if _, _, err := dtaclient.FetchPermits(ctx, nil, e.Renewal, []uint64{today + 2}); !dtaclient.IsCode(err, dtawire.CodeDayOutOfRange) {
		t.Fatalf("day+2: got %v", err)
	}
	// Rotation: old works until the new one is used once.
	old := e.Renewal.DTAs[0]
	if err := dtaclient.Rotate(ctx, nil, e.Renewal); err != nil {
		t.Fatal(err)
	}
	stale := &dtaclient.Renewal{Version: 1, Kind: dtawire.KindClient, Identity: "carol", DTAs: []dtaclient.RenewalDTA{old}}
	if _, _, err := dtaclient.FetchPermits(ctx, nil, stale, []uint64{today}); err != nil {
		t.Fatalf("old secret before the new one is used: %v", err)
	}
	_, changed, err := dtaclient.FetchPermits(ctx, nil, e.Renewal, []uint64{today})
	if err != nil || !changed || e.Renewal.DTAs[0].PendingSecret != "" {
		t.Fatalf("new secret: err %v changed %v", err, changed)
	}
	var he *dtaclient.HandshakeError
	if _, _, err := dtaclient.FetchPermits(ctx, nil, stale, []uint64{today}); !errors.As(err, &he) {
		t.Fatalf("old secret after the new one was used: got %v, want a handshake failure", err)
	}
	// A P2P credential asking for permits: wrong_kind.
	p, err := dtaclient.Enroll(ctx, nil, codesFor(t, dtas, dtawire.KindP2P, "peer1"))
	if err != nil {
		t.Fatal(err)
	}
	p.Renewal.Kind = dtawire.KindClient // lie locally; the D-TA knows the credential's kind
	for i := range p.Renewal.DTAs {
		p.Renewal.DTAs[i].Kind = dtawire.KindP2P
	}
	if _, _, err := dtaclient.FetchPermits(ctx, nil, p.Renewal, []uint64{today}); !dtaclient.IsCode(err, dtawire.CodeWrongKind) {
		t.Fatalf("p2p credential asking for permits: got %v", err)
	}
}

func TestInfoNeedsAValidCredential(t *testing.T) {
	d := startDTA(t, nil)
	ctx := context.Background()
	codes := codesFor(t, []*testDTA{d}, dtawire.KindP2P, "p")
	c := codes[0].Code
	codeCred := dtaclient.Credential{Identity: "enroll:" + c.ID.String(), PSK: c.Secret[:]}
	var info dtawire.InfoResponse
	if err := dtaclient.Call(ctx, nil, d.addr, codeCred, http.MethodGet, "/v1/info", nil, &info); err != nil {
		t.Fatal(err)
	}
	if info.Fingerprint != d.srv.Fingerprint().String() || info.Version != dtawire.Version || info.PermitAhead != 1 {
		t.Fatalf("info: %+v", info)
	}
	e, err := dtaclient.Enroll(ctx, nil, codes)
	if err != nil {
		t.Fatal(err)
	}
	if err := dtaclient.Call(ctx, nil, d.addr, codeCred, http.MethodGet, "/v1/info", nil, &info); !dtaclient.IsCode(err, dtawire.CodeCodeUsed) {
		t.Fatalf("info with a used code: %v", err)
	}
	if _, err := dtaclient.Info(ctx, nil, d.addr, &e.Renewal.DTAs[0]); err != nil {
		t.Fatal(err)
	}
	d.store.Revoke(dtawire.KindP2P, "p", "", "test")
	if _, err := dtaclient.Info(ctx, nil, d.addr, &e.Renewal.DTAs[0]); !dtaclient.IsCode(err, dtawire.CodeRevoked) {
		t.Fatalf("info with a revoked credential: %v", err)
	}
	// Unknown endpoint and method: bad_request JSON.
	if err := dtaclient.Call(ctx, nil, d.addr, mustCred(t, &e.Renewal.DTAs[0]), http.MethodDelete, "/v1/permits", nil, &info); !dtaclient.IsCode(err, dtawire.CodeBadRequest) {
		t.Fatalf("DELETE /v1/permits: %v", err)
	}
}

func mustCred(t *testing.T, d *dtaclient.RenewalDTA) dtaclient.Credential {
	c, err := d.Credential(false)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLongIdentityAndBadIdentities(t *testing.T) {
	d := startDTA(t, nil)
	long := strings.Repeat("é", pairing.MaxIDLen/2) // 1024 bytes of UTF-8
	e, err := dtaclient.Enroll(context.Background(), nil, codesFor(t, []*testDTA{d}, dtawire.KindClient, long))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dtaclient.FetchPermits(context.Background(), nil, e.Renewal, []uint64{pairing.Day(time.Now())}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{long + "x", "", "a\nb", "a\x00", "\xff"} {
		if _, err := d.store.CreateCode(dtawire.KindClient, bad, time.Hour, "t"); err == nil {
			t.Errorf("code created for identity %q", bad)
		}
	}
	if _, err := d.store.CreateCode(dtawire.KindServer, "", time.Hour, "t"); err != nil {
		t.Errorf("deployment-wide server identity: %v", err)
	}
	if _, err := d.store.CreateCode(dtawire.KindClient, "a", MaxCodeTTL+time.Second, "t"); err == nil {
		t.Error("a code beyond the maximum lifetime")
	}
}

// A code issued before its identity was revoked is refused (and not used
// up); after reinstatement it works.
func TestCodeOfRevokedIdentity(t *testing.T) {
	d := startDTA(t, nil)
	codes := codesFor(t, []*testDTA{d}, dtawire.KindClient, "zed")
	if err := d.store.Revoke(dtawire.KindClient, "zed", "left", "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.store.CreateCode(dtawire.KindClient, "zed", time.Hour, "t"); !errors.Is(err, ErrRevoked) {
		t.Fatalf("new code for a revoked identity: %v", err)
	}
	if _, err := dtaclient.Enroll(context.Background(), nil, codes); !dtaclient.IsCode(err, dtawire.CodeRevoked) {
		t.Fatalf("enroll of a revoked identity: %v", err)
	}
	if err := d.store.Reinstate(dtawire.KindClient, "zed", "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := dtaclient.Enroll(context.Background(), nil, codes); err != nil {
		t.Fatalf("after reinstatement: %v", err)
	}
	if err := d.store.Reinstate(dtawire.KindClient, "zed", "t"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reinstating a non-revoked identity: %v", err)
	}
	if err := d.store.Revoke(dtawire.KindClient, "nobody", "", "t"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking an unknown identity: %v", err)
	}
}

// One address cannot hold every handshake slot with idle connections.
// (The default, 64, is for clients behind one NAT.)
func TestIdleConnectionsBoundedPerAddress(t *testing.T) {
	const maxHandshakesPerAddr = 8
	d := startDTACfg(t, nil, "NORMAL", ServerConfig{MaxHandshakesPerAddr: maxHandshakesPerAddr})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range maxHandshakesPerAddr + 4 {
		c, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for metricValueOr(d.srv.reg, "mtls_dta_handshake_failures_total", "too_many_from_address") < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := metricValueOr(d.srv.reg, "mtls_dta_handshake_failures_total", "too_many_from_address"); n != 4 {
		t.Fatalf("%v connections refused beyond %d per address, want 4", n, maxHandshakesPerAddr)
	}
}

// IsHandshakeAlert reports whether err is a failed TLS handshake.
func IsHandshakeAlert(err error) bool {
	var he *dtaclient.HandshakeError
	return errors.As(err, &he)
}
