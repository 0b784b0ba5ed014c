package main

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
)

// writeTestRenewal writes a renewal file for kind/id naming the D-TAs fps,
// all at addr (secrets are random-looking but known to no D-TA).
func writeTestRenewal(t *testing.T, path string, kind dtawire.Kind, id, addr string, fps []string) {
	t.Helper()
	r := &dtaclient.Renewal{Version: 1, Kind: kind, Identity: id}
	for i, fp := range fps {
		sec := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat(string(rune('a'+i)), 32)))
		r.DTAs = append(r.DTAs, dtaclient.RenewalDTA{Address: addr, Fingerprint: fp, Kind: kind, Identity: id, Secret: sec})
	}
	if err := dtaclient.WriteRenewal(path, r, false); err != nil {
		t.Fatal(err)
	}
}

var statusAddrRE = regexp.MustCompile(`msg="status listening" addr=(127\.0\.0\.1:\d+)`)

// TestRenewalFlag: --renewal is checked against the keys given, and a proxy
// client whose D-TAs cannot be reached starts, says which D-TAs failed, and
// reports 503 on /healthz (no permit for today) with the metrics to alert on.
func TestRenewalFlag(t *testing.T) {
	k := makeCLIKeys(t)
	alice, err := mtls.LoadCSClientKey(k.f("alice.key"))
	if err != nil {
		t.Fatal(err)
	}
	var fps []string
	for _, fp := range alice.DTAs() {
		fps = append(fps, fp.String())
	}
	dead, err := freeAddr() // no D-TA listens there
	if err != nil {
		t.Fatal(err)
	}
	ren := filepath.Join(k.dir, "alice.renewal")
	writeTestRenewal(t, ren, dtawire.KindClient, cliAlice, dead, fps)
	bob := filepath.Join(k.dir, "bob.renewal")
	writeTestRenewal(t, bob, dtawire.KindClient, "bob", dead, fps)
	two := filepath.Join(k.dir, "two.renewal")
	writeTestRenewal(t, two, dtawire.KindClient, cliAlice, dead, fps[:2])

	client := []string{"client", "--connect", "127.0.0.1:1", "--key", k.f("alice.key")}
	mustFail(t, "", append(client, "--renewal", ren, "--permit", k.f("alice-permit.key")), "--renewal and --permit: give one")
	mustFail(t, "", append(client, "--renewal", bob), `the file is for "bob", but the CS client key is for "alice@example.com"`)
	mustFail(t, "", append(client, "--renewal", two), "the file names D-TAs", "but the CS client key comes from")
	mustFail(t, "", []string{"server", "--listen", "127.0.0.1:0", "--key", k.f("server.key"), "--renewal", ren}, "it is a CS client's")
	mustFail(t, "", []string{"client", "--connect", "127.0.0.1:1", "--p2p-key", k.f("node-a.key"), "--server-id", "node-b", "--renewal", ren},
		"time permits need the CS client key or PIN token")
	// The one-shot client with unreachable D-TAs fails before connecting,
	// naming the D-TAs and the day.
	mustFail(t, "", append(client, "--renewal", ren), "--renewal: no time permit for today", fps[0], "connection refused")

	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	p, _ := startProxy(t, "client", "--listen", "127.0.0.1:0", "--target", target.Addr().String(),
		"--key", k.f("alice.key"), "--renewal", ren, "--server-id", "api.example.com", "--status", "127.0.0.1:0")
	var status string
	for end := time.Now().Add(10 * time.Second); status == "" && time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if m := statusAddrRE.FindStringSubmatch(p.stderr.String()); m != nil {
			status = m[1]
		}
	}
	if status == "" {
		t.Fatalf("no status address logged:\n%s", p.stderr.String())
	}
	if log := p.stderr.String(); !strings.Contains(log, "first renewal failed") || !strings.Contains(log, fps[2]) {
		t.Fatalf("the failed first renewal is not logged naming the D-TAs:\n%s", log)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + status + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "degraded: no time permit for today") {
		t.Fatalf("/healthz without permits: %d %q; want 503 degraded: no time permit for today", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{"mtls_permit_horizon_days -1", `mtls_permit_renewal_failures_total{dta="` + fps[1] + `"} `} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// keys renew --out-dir creates a missing folder, private to the user, and
// refuses a file in its place.
func TestKeysRenewOutDirCreated(t *testing.T) {
	dir := t.TempDir()
	dead, err := freeAddr() // no D-TA listens there
	if err != nil {
		t.Fatal(err)
	}
	ren := filepath.Join(dir, "alice.renewal")
	writeTestRenewal(t, ren, dtawire.KindClient, cliAlice, dead, []string{"0123456789abcdef"})
	out := filepath.Join(dir, "permits", "alice")
	errOut := mustFail(t, "", []string{"keys", "renew", "--renewal", ren, "--out-dir", out + "/"}, "connection refused")
	if strings.Contains(errOut, "not a directory") {
		t.Fatalf("--out-dir refused: %s", errOut)
	}
	fi, err := os.Stat(out)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("--out-dir %s: %v %v, want a directory with mode 0700", out, fi, err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mustFail(t, "", []string{"keys", "renew", "--renewal", ren, "--out-dir", file}, "exists and is not a directory")
}
