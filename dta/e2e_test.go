package dta

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// handshakeOver runs a TLS handshake and one echoed byte between the two
// configs over loopback TCP, bounded to 20 s.
func handshakeOver(t *testing.T, server, client *mtls.Config) error {
	t.Helper()
	ln, err := mtls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			srvErr <- err
			return
		}
		_, err = c.Write(b)
		srvErr <- err
	}()
	c, err := mtls.Dial("tcp", ln.Addr().String(), client)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte{42}); err != nil {
		return err
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if b[0] != 42 {
		return errors.New("echo mismatch")
	}
	return <-srvErr
}

func mustLoad[T any](t *testing.T, load func(string) (T, error), path string) T {
	t.Helper()
	k, err := load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return k
}

// TestEndToEnd runs three real `mtls ta serve` processes with their own
// stores and drives them with the real `mtls ta …` and `mtls keys …`
// commands.
func TestEndToEnd(t *testing.T) {
	root := t.TempDir()
	var ds []*dtaDir
	var ps []*serveProc
	for i := 1; i <= 3; i++ {
		d := newDTADir(t, root, i)
		ds = append(ds, d)
		// Tomorrow's permit at any hour (this test runs on real time
		// and crosses a fake midnight); the window is tested on its own.
		ps = append(ps, d.serve(t, "--permit-ahead-hours", "24"))
	}
	ep := filepath.Join(root, "endpoint")
	os.Mkdir(ep, 0o700)
	// enrollKind runs `mtls keys enroll` with a fresh code from every D-TA.
	enrollArgs := func(kind, id, name string) []string {
		args := []string{"keys", "enroll", "--out", name + ".key", "--renewal", name + ".renewal"}
		for i, d := range ds {
			args = append(args, "--dta", ps[i].addr+"="+d.code(t, kind, id))
		}
		return args
	}
	out := mustMtls(t, ep, enrollArgs("client", "alice@example.com", "alice")...)
	if !strings.Contains(out, "enrolled client") {
		t.Fatalf("keys enroll: %s", out)
	}
	mustMtls(t, ep, enrollArgs("server", "api.example.com", "api")...)
	mustMtls(t, ep, enrollArgs("server", "", "deploy")...)
	mustMtls(t, ep, enrollArgs("p2p", "peer1", "peer1")...)
	mustMtls(t, ep, enrollArgs("p2p", "peer2", "peer2")...)
	for _, f := range []string{"alice.key", "alice.renewal", "api.key", "peer1.key"} {
		fi, err := os.Stat(filepath.Join(ep, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v, want 0600", f, err, fi.Mode().Perm())
		}
	}
	today := pairing.Day(time.Now())
	alice := mustLoad(t, mtls.LoadCSClientKey, filepath.Join(ep, "alice.key"))
	permitPath := filepath.Join(ep, "permit-"+pairing.FormatDay(today)+".pem")
	permit := mustLoad(t, mtls.LoadTimePermit, permitPath)
	api := mustLoad(t, mtls.LoadCSServerSecret, filepath.Join(ep, "api.key"))
	deploy := mustLoad(t, mtls.LoadCSServerSecret, filepath.Join(ep, "deploy.key"))
	peer1 := mustLoad(t, mtls.LoadP2PKey, filepath.Join(ep, "peer1.key"))
	peer2 := mustLoad(t, mtls.LoadP2PKey, filepath.Join(ep, "peer2.key"))
	if api.ID() != "api.example.com" || len(alice.DTAs()) != 3 || alice.IsShare() {
		t.Fatalf("keys: server id %q, client D-TAs %d", api.ID(), len(alice.DTAs()))
	}

	t.Run("CS handshake over mtls with the named server key api.example.com", func(t *testing.T) {
		// The server holds its named key and the deployment-wide one; the
		// client's server_identity picks the named one.
		srv := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{deploy, api}, PermitMode: pairing.PermitsRequired}
		if err := handshakeOver(t, srv, &mtls.Config{CSKey: alice, CSPermits: []*pairing.TimePermit{permit}, ServerIdentity: "api.example.com"}); err != nil {
			t.Fatal(err)
		}
		// A server without api.example.com's key cannot pass for it.
		other := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{deploy}, PermitMode: pairing.PermitsRequired}
		if err := handshakeOver(t, other, &mtls.Config{CSKey: alice, CSPermits: []*pairing.TimePermit{permit}, ServerIdentity: "api.example.com"}); err == nil {
			t.Fatal("a server without the key of api.example.com completed the handshake as api.example.com")
		}
		// Without its permit the client is refused (permits required).
		if err := handshakeOver(t, srv, &mtls.Config{CSKey: alice, ServerIdentity: "api.example.com"}); err == nil {
			t.Fatal("a client without a time permit was accepted by a server that requires permits")
		}
	})
	t.Run("CS handshake over mtls with the deployment-wide server key and a permit", func(t *testing.T) {
		err := handshakeOver(t,
			&mtls.Config{CSServerKeys: []*pairing.CSServerSecret{deploy}, PermitMode: pairing.PermitsRequired},
			&mtls.Config{CSKey: alice, CSPermits: []*pairing.TimePermit{permit}})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("P2P handshake over mtls", func(t *testing.T) {
		err := handshakeOver(t, &mtls.Config{P2PKey: peer1}, &mtls.Config{P2PKey: peer2, ServerIdentity: "peer1"})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("PIN token and shares on request", func(t *testing.T) {
		args := append(enrollArgs("client", "gina", "gina"), "--pin", "1234", "--out-shares", ".", "--out-dir", ".")
		mustMtls(t, ep, args...)
		tok := mustLoad(t, mtls.LoadPINToken, filepath.Join(ep, "gina.key"))
		for _, d := range ds {
			s := mustLoad(t, func(p string) (*pairing.CSClientKey, error) {
				k, err := mtls.LoadKey(p) // a share: LoadCSClientKey wants a combined key
				if err != nil {
					return nil, err
				}
				return k.(*pairing.CSClientKey), nil
			}, filepath.Join(ep, "share-"+d.fp+".pem"))
			if !s.IsShare() || s.DTAs()[0].String() != d.fp {
				t.Fatalf("share file of D-TA %s: origin %v", d.fp, s.DTAs())
			}
		}
		for pin, want := range map[uint32]bool{1234: true, 1235: false} {
			k, err := tok.AddPIN(pin)
			if err != nil {
				t.Fatal(err)
			}
			err = handshakeOver(t, &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{deploy}, PermitMode: pairing.PermitsOptional}, &mtls.Config{CSKey: k})
			if (err == nil) != want {
				t.Fatalf("PIN %d: handshake error %v", pin, err)
			}
		}
	})

	t.Run("permit source from the renewal file", func(t *testing.T) {
		src, err := dtaclient.OpenPermitSource(context.Background(), filepath.Join(ep, "alice.renewal"), dtaclient.PermitSourceConfig{Logger: quietLogger(), PermitAheadHours: 24})
		if err != nil {
			t.Fatal(err)
		}
		tp, err := src.GetCSPermit(today)
		if err != nil {
			t.Fatal(err)
		}
		if src.Horizon() != 1 || src.Health() != nil {
			t.Fatalf("horizon %d health %v", src.Horizon(), src.Health())
		}
		if err := handshakeOver(t, &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{deploy}, PermitMode: pairing.PermitsRequired}, &mtls.Config{CSKey: alice, CSPermits: []*pairing.TimePermit{tp}}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("code used twice", func(t *testing.T) {
		args := enrollArgs("client", "dave", "dave")
		mustMtls(t, ep, args...)
		args[3], args[5] = "dave2.key", "dave2.renewal"
		_, errOut, err := runMtls(t, ep, args...)
		if err == nil || !strings.Contains(errOut, "code_used") {
			t.Fatalf("second use: err %v, stderr %s", err, errOut)
		}
		audit := mustMtls(t, ds[0].dir, "ta", "audit", "--db", ds[0].db, "--json")
		if !strings.Contains(audit, `"result":"code_used"`) {
			t.Fatalf("the second use is not audited:\n%s", audit)
		}
	})

	t.Run("20 concurrent uses of one code", func(t *testing.T) {
		c, err := dtawire.ParseEnrollCode(ds[0].code(t, "p2p", "racer"))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, used := 0, 0
		for range 20 {
			wg.Go(func() {
				_, err := dtaclient.Enroll(context.Background(), nil, []dtaclient.DTACode{{Address: ps[0].addr, Code: c}})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok++
				} else if dtaclient.IsCode(err, dtawire.CodeCodeUsed) {
					used++
				} else {
					t.Errorf("unexpected: %v", err)
				}
			})
		}
		wg.Wait()
		if ok != 1 || used != 19 {
			t.Fatalf("%d succeeded, %d code_used; want exactly 1 and 19", ok, used)
		}
	})

	t.Run("expired code", func(t *testing.T) {
		code := ds[1].code(t, "client", "erin", "--ttl", "1s")
		time.Sleep(1100 * time.Millisecond)
		_, errOut, err := runMtls(t, ep, "keys", "enroll", "--out", "erin.key", "--renewal", "erin.renewal", "--dta", ps[1].addr+"="+code)
		if err == nil || !strings.Contains(errOut, "code_expired") {
			t.Fatalf("expired code: err %v, stderr %s", err, errOut)
		}
	})

	t.Run("code of D-TA 1 sent to D-TA 2", func(t *testing.T) {
		code := ds[0].code(t, "client", "frank")
		_, errOut, err := runMtls(t, ep, "keys", "enroll", "--out", "frank.key", "--renewal", "frank.renewal", "--dta", ps[1].addr+"="+code)
		if err == nil || !strings.Contains(errOut, "unknown_psk_identity") || !strings.Contains(errOut, ds[0].fp) {
			t.Fatalf("code for D-TA 1 at D-TA 2: err %v, stderr %s", err, errOut)
		}
		c, _ := dtawire.ParseEnrollCode(code)
		if _, err := dtaclient.Enroll(context.Background(), nil, []dtaclient.DTACode{{Address: ps[0].addr, Code: c}}); err != nil {
			t.Fatalf("the right D-TA refused the code after the failed attempt: %v", err)
		}
	})

	t.Run("one bad code does not use up the others", func(t *testing.T) {
		good1, used2, good3 := ds[0].code(t, "client", "hank"), ds[1].code(t, "client", "hank"), ds[2].code(t, "client", "hank")
		c2, _ := dtawire.ParseEnrollCode(used2)
		if _, err := dtaclient.Enroll(context.Background(), nil, []dtaclient.DTACode{{Address: ps[1].addr, Code: c2}}); err != nil {
			t.Fatal(err)
		}
		_, errOut, err := runMtls(t, ep, "keys", "enroll", "--out", "hank.key", "--renewal", "hank.renewal",
			"--dta", ps[0].addr+"="+good1, "--dta", ps[1].addr+"="+used2, "--dta", ps[2].addr+"="+good3)
		if err == nil || !strings.Contains(errOut, "code_used") || !strings.Contains(errOut, ds[1].fp) || strings.Contains(errOut, ds[0].fp) {
			t.Fatalf("a used code among good ones: err %v, stderr %s", err, errOut)
		}
		for i, s := range map[int]string{0: good1, 2: good3} {
			c, _ := dtawire.ParseEnrollCode(s)
			if _, err := dtaclient.Enroll(context.Background(), nil, []dtaclient.DTACode{{Address: ps[i].addr, Code: c}}); err != nil {
				t.Fatalf("D-TA %d's good code after the failed enrollment: %v", i+1, err)
			}
		}
	})

	t.Run("unknown identity and wrong secret are told apart and counted", func(t *testing.T) {
		var me *ciphersuite.AlertError
		bogus := &dtaclient.RenewalDTA{Address: ps[2].addr, Kind: dtawire.KindClient, Identity: "nobody", Secret: strings.Repeat("A", 43)}
		_, err := dtaclient.Info(context.Background(), nil, ps[2].addr, bogus)
		if !errors.As(err, &me) || me.Alert != ciphersuite.AlertUnknownPSKIdentity {
			t.Fatalf("unknown identity: %v", err)
		}
		r, err := dtaclient.LoadRenewal(filepath.Join(ep, "alice.renewal"))
		if err != nil {
			t.Fatal(err)
		}
		wrong := r.DTAs[2]
		wrong.Secret = strings.Repeat("B", 42) + "A"
		_, err = dtaclient.Info(context.Background(), nil, ps[2].addr, &wrong)
		if !errors.As(err, &me) || me.Alert != ciphersuite.AlertBadRecordMAC {
			t.Fatalf("wrong secret: %v", err)
		}
		// The client sees the alert just before the D-TA counts it: poll.
		wants := []string{`mtls_dta_handshake_failures_total{reason="unknown_psk_identity"} 1`, `mtls_dta_handshake_failures_total{reason="bad_record_mac"} 1`}
		var body []byte
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get("http://" + ps[2].status + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), wants[0]) && strings.Contains(string(body), wants[1]) &&
				strings.Count(ps[2].log.String(), "handshake failed") >= 2 {
				break
			}
		}
		for _, want := range wants {
			if !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if !strings.Contains(ps[2].log.String(), "handshake failed") || !strings.Contains(ps[2].log.String(), "remote=127.0.0.1:") {
			t.Errorf("failures not logged with the remote address:\n%s", ps[2].log.String())
		}
		resp, err := http.Get("http://" + ps[2].status + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v %v", err, resp)
		}
		resp.Body.Close()
	})

	renew := func() (string, error) {
		_, errOut, err := runMtls(t, ep, "keys", "renew", "--renewal", "alice.renewal", "--out-dir", ".")
		return errOut, err
	}
	t.Run("revoked gets no permits, reinstated does", func(t *testing.T) {
		before, _ := os.ReadFile(permitPath)
		mustMtls(t, ds[1].dir, "ta", "revoke", "--db", ds[1].db, "--kind", "client", "--id", "alice@example.com", "--reason", "laptop stolen")
		errOut, err := renew()
		if err == nil || !strings.Contains(errOut, "revoked") || !strings.Contains(errOut, ds[1].fp) {
			t.Fatalf("revoked: err %v, stderr %s", err, errOut)
		}
		after, _ := os.ReadFile(permitPath)
		if string(before) != string(after) {
			t.Fatal("a failed renewal changed the permit file")
		}
		out := mustMtls(t, ds[1].dir, "ta", "reinstate", "--db", ds[1].db, "--kind", "client", "--id", "alice@example.com")
		if !strings.Contains(out, "fresh code") {
			t.Fatalf("ta reinstate does not say a fresh code is needed: %s", out)
		}
		// The old (possibly stolen) renewal secret stays dead.
		if errOut, err := renew(); err == nil || !strings.Contains(errOut, ds[1].fp) {
			t.Fatalf("the old renewal secret works after reinstate: err %v, stderr %s", err, errOut)
		}
		args := append(enrollArgs("client", "alice@example.com", "alice"), "--force")
		mustMtls(t, ep, args...)
		if errOut, err := renew(); err != nil {
			t.Fatalf("reinstated and re-enrolled: %v %s", err, errOut)
		}
	})

	t.Run("a client with a permit source keeps connecting through midnight", func(t *testing.T) {
		throughMidnight(t, filepath.Join(ep, "alice.renewal"), alice, api)
	})

	t.Run("one D-TA down: permits kept, the D-TA named", func(t *testing.T) {
		before, _ := os.ReadFile(permitPath)
		ps[2].term(t) // SIGTERM drains and exits 0
		errOut, err := renew()
		if err == nil || !strings.Contains(errOut, ds[2].fp) || !strings.Contains(errOut, "kept the permits") {
			t.Fatalf("D-TA 3 down: err %v, stderr %s", err, errOut)
		}
		if strings.Contains(errOut, ds[0].fp) || strings.Contains(errOut, ds[1].fp) {
			t.Fatalf("healthy D-TAs named as failed: %s", errOut)
		}
		after, _ := os.ReadFile(permitPath)
		if string(before) != string(after) {
			t.Fatal("a failed renewal changed the permit file")
		}
		if _, err := mtls.LoadTimePermit(permitPath); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("operator commands while serving", func(t *testing.T) {
		list := mustMtls(t, ds[0].dir, "ta", "list", "--db", ds[0].db, "--json")
		for _, want := range []string{`"alice@example.com"`, `"api.example.com"`, `"peer2"`, ds[0].fp} {
			if !strings.Contains(list, want) {
				t.Errorf("ta list lacks %s", want)
			}
		}
		audit := mustMtls(t, ds[1].dir, "ta", "audit", "--db", ds[1].db, "--since", "1h")
		for _, want := range []string{"revoke", "reinstate", "laptop stolen", "permits", "revoked"} {
			if !strings.Contains(audit, want) {
				t.Errorf("ta audit lacks %q:\n%s", want, audit)
			}
		}
	})
}
