package dta

import (
	"bufio"
	"context"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
)

// opensslBin fails the test when openssl is missing: the stock-client
// reproduction needs a real peer.
func opensslBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("missing peer openssl (scripts/install-peers.sh installs it): %v", err)
	}
	return p
}

// sClient runs openssl s_client against addr with one PSK, sends req and
// returns what s_client printed (bounded to 30 s).
func sClient(t *testing.T, addr, identity, pskHex, req string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"s_client", "-connect", addr, "-tls1_2", "-cipher", "ECDHE-PSK-CHACHA20-POLY1305",
		"-psk_identity", identity, "-psk", pskHex, "-ign_eof"}, extra...)
	cmd := exec.CommandContext(ctx, opensslBin(t), args...)
	cmd.Stdin = strings.NewReader(req)
	out, _ := cmd.CombinedOutput()
	return string(out)
}

func renewalSecretHex(t *testing.T, path string) string {
	t.Helper()
	r, err := dtaclient.LoadRenewal(path)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := dtawire.DecodeSecret(r.DTAs[0].Secret)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(sec[:])
}

// TestNoResumptionStockClient is the reviewer's reproduction with a stock
// client against a real `mtls ta serve`: a session saved under alice's
// (stolen) secret must not resume once alice is re-enrolled, not even with
// a wrong PSK, and nothing is served on it.
func TestNoResumptionStockClient(t *testing.T) {
	root := t.TempDir()
	d := newDTADir(t, root, 1)
	p := d.serve(t)
	ep := filepath.Join(root, "ep")
	os.Mkdir(ep, 0o700)
	const alice = "alice@example.com"
	mustMtls(t, ep, "keys", "enroll", "--out", "a.key", "--renewal", "a.renewal", "--dta", p.addr+"="+d.code(t, "client", alice))
	stolen := renewalSecretHex(t, filepath.Join(ep, "a.renewal"))
	sess := filepath.Join(root, "sess.pem")
	get := "GET /v1/info HTTP/1.1\r\nHost: dta\r\nConnection: close\r\n\r\n"

	out := sClient(t, p.addr, "renew:client:"+alice, stolen, get, "-sess_out", sess)
	if !strings.Contains(out, "HTTP/1.1 200") {
		t.Fatalf("s_client with the valid secret was not served:\n%s", out)
	}
	if strings.Contains(out, "TLS session ticket:") {
		t.Errorf("the D-TA issued a session ticket:\n%s", out)
	}

	// The operator re-enrolls alice: the stolen secret must be dead.
	mustMtls(t, ep, "keys", "enroll", "--out", "a2.key", "--renewal", "a2.renewal", "--dta", p.addr+"="+d.code(t, "client", alice))
	wrong := strings.Repeat("ab", 32)
	for name, psk := range map[string]string{"wrong PSK": wrong, "the stolen secret": stolen} {
		out := sClient(t, p.addr, "renew:client:"+alice, psk, get, "-sess_in", sess)
		if strings.Contains(out, "Reused") || strings.Contains(out, "HTTP/1.1 200") {
			t.Errorf("%s with the saved session after re-enrollment: resumed or served:\n%s", name, out)
		}
	}
	// The new secret works (a full handshake).
	out = sClient(t, p.addr, "renew:client:"+alice, renewalSecretHex(t, filepath.Join(ep, "a2.renewal")), get)
	if !strings.Contains(out, "HTTP/1.1 200") || strings.Contains(out, "Reused") {
		t.Fatalf("the new secret:\n%s", out)
	}
}

// keptAlive is one kept-alive HTTP/1.1 connection to a D-TA.
type keptAlive struct {
	c  *mtls.Conn
	br *bufio.Reader
}

func dialKeptAlive(t *testing.T, addr string, d *dtaclient.RenewalDTA, now func() time.Time) *keptAlive {
	t.Helper()
	cr, err := d.Credential(false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mtls.Dial("tcp", addr, &mtls.Config{CipherSuites: dtawire.Suites, PSKIdentity: cr.Identity, PSK: cr.PSK, ServerName: cr.ServerName, Time: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &keptAlive{c: c, br: bufio.NewReader(c)}
}

// info sends GET /v1/info on the connection and returns the status and
// whether the D-TA said it closes the connection.
func (k *keptAlive) info(t *testing.T) (int, bool) {
	t.Helper()
	if _, err := k.c.Write([]byte("GET /v1/info HTTP/1.1\r\nHost: dta\r\n\r\n")); err != nil {
		return 0, true
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return 0, true
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Close
}

// TestKeptAliveConnectionRechecked: a connection kept alive across a
// re-enrollment is refused at its next request (real `mtls ta serve`).
func TestKeptAliveConnectionRechecked(t *testing.T) {
	root := t.TempDir()
	d := newDTADir(t, root, 1)
	p := d.serve(t)
	ep := filepath.Join(root, "ep")
	os.Mkdir(ep, 0o700)
	const alice = "alice@example.com"
	mustMtls(t, ep, "keys", "enroll", "--out", "a.key", "--renewal", "a.renewal", "--dta", p.addr+"="+d.code(t, "client", alice))
	r, err := dtaclient.LoadRenewal(filepath.Join(ep, "a.renewal"))
	if err != nil {
		t.Fatal(err)
	}
	k := dialKeptAlive(t, p.addr, &r.DTAs[0], nil)
	if st, closed := k.info(t); st != 200 || closed {
		t.Fatalf("first request: %d closed=%v", st, closed)
	}
	if st, closed := k.info(t); st != 200 || closed {
		t.Fatalf("second request before re-enrollment: %d closed=%v", st, closed)
	}
	mustMtls(t, ep, "keys", "enroll", "--out", "a2.key", "--renewal", "a2.renewal", "--dta", p.addr+"="+d.code(t, "client", alice))
	if st, closed := k.info(t); st == 200 || !closed {
		t.Fatalf("request on a connection authenticated with a replaced secret: %d closed=%v", st, closed)
	}
}

// TestKeptAliveConnectionAge: a connection is refused once it is
// MaxConnAge old (injected clock).
func TestKeptAliveConnectionAge(t *testing.T) {
	var clock atomic.Int64
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	d := startDTA(t, now)
	e, err := dtaclient.Enroll(context.Background(), &dtaclient.ClientOptions{Now: now}, codesFor(t, []*testDTA{d}, dtawire.KindClient, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	k := dialKeptAlive(t, d.addr, &e.Renewal.DTAs[0], now)
	if st, closed := k.info(t); st != 200 || closed {
		t.Fatalf("fresh connection: %d closed=%v", st, closed)
	}
	clock.Store(start.Add(MaxConnAge - time.Second).UnixNano())
	if st, closed := k.info(t); st != 200 || closed {
		t.Fatalf("connection just under the age limit: %d closed=%v", st, closed)
	}
	clock.Store(start.Add(MaxConnAge).UnixNano())
	if st, closed := k.info(t); st == 200 || !closed {
		t.Fatalf("connection at the age limit: %d closed=%v", st, closed)
	}
}
