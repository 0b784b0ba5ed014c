package dta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// newPGDTADir is newDTADir with the store in a new PostgreSQL database.
func newPGDTADir(t testing.TB, root string, i int) *dtaDir {
	t.Helper()
	d := &dtaDir{dir: filepath.Join(root, fmt.Sprintf("dta%d", i))}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d.share, d.db = filepath.Join(d.dir, "dta.share"), pgDatabase(t)
	mustMtls(t, d.dir, "ta", "init", "--out", d.share)
	out := mustMtls(t, d.dir, "ta", "init-db", "--master", d.share, "--db", d.db)
	f := strings.Fields(out)
	d.fp = f[len(f)-1]
	return d
}

func parseCode(t testing.TB, s string) *dtawire.EnrollCode {
	t.Helper()
	c, err := dtawire.ParseEnrollCode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// at returns a copy of r whose only D-TA is reached at addr (another
// replica of the same D-TA).
func at(r *dtaclient.Renewal, addr string) *dtaclient.Renewal {
	c := *r
	c.DTAs = append([]dtaclient.RenewalDTA(nil), r.DTAs...)
	c.DTAs[0].Address = addr
	return &c
}

func healthz(status string) int {
	resp, err := http.Get("http://" + status + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// verifyAuditCLI runs `ta audit --verify` against the store and fails the
// test unless the chain verifies with every row under a head.
func verifyAuditCLI(t testing.TB, d *dtaDir) string {
	t.Helper()
	out := mustMtls(t, d.dir, "ta", "audit", "--db", d.db, "--verify")
	if !strings.Contains(out, "audit log verified") || !strings.Contains(out, " 0 rows after the last head") {
		t.Fatalf("ta audit --verify:\n%s", out)
	}
	return out
}

// TestPGReplicas runs two `ta serve` replicas of one D-TA on one PostgreSQL
// database and checks what must hold across them.
func TestPGReplicas(t *testing.T) {
	root := t.TempDir()
	d := newPGDTADir(t, root, 1)
	a, b := d.serve(t), d.serve(t)
	replicas := []*serveProc{a, b}
	ctx := context.Background()
	opt := &dtaclient.ClientOptions{Timeout: 10 * time.Second}
	today := pairing.Day(time.Now())

	t.Run("code redeems once", func(t *testing.T) {
		code := parseCode(t, d.code(t, "client", "alice"))
		cr := dtaclient.Credential{Identity: "enroll:" + code.ID.String(), PSK: code.Secret[:]}
		var ok, used atomic.Int64
		var other sync.Map
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				var out dtawire.EnrollResponse
				err := dtaclient.Call(ctx, opt, replicas[i%2].addr, cr, http.MethodPost, "/v1/enroll", struct{}{}, &out)
				switch {
				case err == nil:
					ok.Add(1)
				case dtaclient.IsCode(err, dtawire.CodeCodeUsed):
					used.Add(1)
				default:
					other.Store(i, err)
				}
			})
		}
		wg.Wait()
		other.Range(func(k, v any) bool { t.Errorf("redemption %v: %v", k, v); return true })
		if ok.Load() != 1 || used.Load() != 19 {
			t.Fatalf("20 concurrent redemptions over 2 replicas: %d succeeded, %d code_used (want 1 and 19)", ok.Load(), used.Load())
		}
	})

	t.Run("revocation seen by every replica", func(t *testing.T) {
		e, err := dtaclient.Enroll(ctx, opt, []dtaclient.DTACode{{Address: a.addr, Code: parseCode(t, d.code(t, "client", "rev"))}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range replicas {
			if _, _, err := dtaclient.FetchPermits(ctx, opt, at(e.Renewal, p.addr), []uint64{today}); err != nil {
				t.Fatalf("before revocation, via %s: %v", p.addr, err)
			}
		}
		mustMtls(t, d.dir, "ta", "revoke", "--db", d.db, "--kind", "client", "--id", "rev", "--reason", "test")
		for _, p := range replicas {
			if _, _, err := dtaclient.FetchPermits(ctx, opt, at(e.Renewal, p.addr), []uint64{today}); !dtaclient.IsCode(err, dtawire.CodeRevoked) {
				t.Fatalf("after revocation, via %s: %v (want revoked)", p.addr, err)
			}
		}
		if _, errOut, err := runMtls(t, d.dir, "ta", "reinstate", "--db", d.db, "--kind", "client", "--id", "rev"); err != nil {
			t.Fatalf("ta reinstate against the URL: %v\n%s", err, errOut)
		}
		mustMtls(t, d.dir, "ta", "revoke", "--db", d.db, "--kind", "client", "--id", "rev", "--reason", "again")
		var list struct {
			Identities []IdentityInfo `json:"identities"`
		}
		if err := json.Unmarshal([]byte(mustMtls(t, d.dir, "ta", "list", "--db", d.db, "--json")), &list); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, i := range list.Identities {
			found = found || (i.Identity == "rev" && i.RevokedAt != nil)
		}
		if !found {
			t.Fatalf("ta list against the URL does not show the revocation: %+v", list)
		}
	})

	t.Run("rotation promotes once", func(t *testing.T) {
		e, err := dtaclient.Enroll(ctx, opt, []dtaclient.DTACode{{Address: a.addr, Code: parseCode(t, d.code(t, "client", "rot"))}})
		if err != nil {
			t.Fatal(err)
		}
		old := e.Renewal.DTAs[0].Secret
		if err := dtaclient.Rotate(ctx, opt, e.Renewal); err != nil {
			t.Fatal(err)
		}
		pending := e.Renewal.DTAs[0].PendingSecret
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				r := at(e.Renewal, replicas[i%2].addr)
				r.DTAs[0].Secret, r.DTAs[0].PendingSecret = pending, ""
				_, _, errs[i] = dtaclient.FetchPermits(ctx, opt, r, []uint64{today})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("fetch %d with the new secret: %v", i, err)
			}
		}
		for _, p := range replicas {
			r := at(e.Renewal, p.addr)
			r.DTAs[0].Secret, r.DTAs[0].PendingSecret = old, ""
			if _, _, err := dtaclient.FetchPermits(ctx, opt, r, []uint64{today}); err == nil {
				t.Fatalf("the old secret still works at %s after the new one was used", p.addr)
			}
		}
		st, err := OpenStore(d.db, &StoreOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		sec, _ := dtawire.DecodeSecret(pending)
		var kid string
		var pend *string
		if err := st.queryRow(`SELECT key_id, pending_key_id FROM identities WHERE identity='rot'`).Scan(&kid, &pend); err != nil {
			t.Fatal(err)
		}
		if kid != dtawire.KeyID(sec[:]) || pend != nil {
			t.Fatalf("after promotion: key_id %s pending %v, want %s and none", kid, pend, dtawire.KeyID(sec[:]))
		}
	})

	t.Run("burst then audit verifies", func(t *testing.T) {
		e, err := dtaclient.Enroll(ctx, opt, []dtaclient.DTACode{{Address: b.addr, Code: parseCode(t, d.code(t, "client", "burst"))}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var fails atomic.Int64
		for i := range 8 {
			wg.Go(func() {
				for range 15 {
					if _, _, err := dtaclient.FetchPermits(ctx, opt, at(e.Renewal, replicas[i%2].addr), []uint64{today}); err != nil {
						fails.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if fails.Load() != 0 {
			t.Fatalf("%d permit fetches failed", fails.Load())
		}
		// The head is exported as a metric and logged (a copy kept outside
		// the database pins the chain).
		resp, err := http.Get("http://" + a.status + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "mtls_dta_audit_head_seq ") || !strings.Contains(string(body), "mtls_dta_audit_head_info{hash=") {
			t.Fatalf("no audit head in /metrics:\n%s", body)
		}
		a.term(t)
		b.term(t)
		if !strings.Contains(a.log.String(), "audit head") || !strings.Contains(a.log.String(), "pin=") {
			t.Fatalf("the audit head is not logged:\n%s", a.log.String())
		}
		out := verifyAuditCLI(t, d)
		t.Log(out)
	})

	t.Run("another D-TA's database refused", func(t *testing.T) {
		other := filepath.Join(d.dir, "other.share")
		mustMtls(t, d.dir, "ta", "init", "--out", other)
		_, errOut, err := runMtls(t, d.dir, "ta", "serve", "--master", other, "--db", d.db, "--listen", "127.0.0.1:0")
		if err == nil || !strings.Contains(errOut, "belongs to D-TA "+d.fp) {
			t.Fatalf("a replica with another master share started or said: %v\n%s", err, errOut)
		}
	})
}

// TestPGReplicaKilled: kill -9 one replica in the middle of a burst of
// enrollments and permit fetches; the other keeps serving, nothing a client
// received is missing from the audit log, no code is issued twice, and the
// chain verifies.
func TestPGReplicaKilled(t *testing.T) {
	root := t.TempDir()
	d := newPGDTADir(t, root, 1)
	a, b := d.serve(t), d.serve(t)
	st, err := OpenStore(d.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	var codes []*dtawire.EnrollCode
	for i := range 80 {
		c, err := st.CreateCode(dtawire.KindClient, fmt.Sprintf("user%d", i), time.Hour, "test")
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, c)
	}
	pc, _ := st.CreateCode(dtawire.KindClient, "permit-user", time.Hour, "test")
	st.Close()
	e, err := dtaclient.Enroll(context.Background(), nil, []dtaclient.DTACode{{Address: b.addr, Code: pc}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var next, enrolled, permitsOK, afterKill atomic.Int64
	var killed atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	opt := &dtaclient.ClientOptions{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)-1) / 2 // every code is tried twice, on both replicas
				if i >= len(codes) {
					return
				}
				addr := []string{a.addr, b.addr}[(w+i)%2]
				if _, err := dtaclient.Enroll(ctx, opt, []dtaclient.DTACode{{Address: addr, Code: codes[i]}}); err == nil {
					mu.Lock()
					got[codes[i].ID.String()]++
					mu.Unlock()
					enrolled.Add(1)
					if killed.Load() {
						afterKill.Add(1)
					}
				}
			}
		})
	}
	today := pairing.Day(time.Now())
	for w := range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				addr := []string{a.addr, b.addr}[w]
				if _, _, err := dtaclient.FetchPermits(ctx, opt, at(e.Renewal, addr), []uint64{today}); err == nil {
					permitsOK.Add(1)
				}
			}
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for enrolled.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	a.cmd.Process.Kill() // SIGKILL
	<-a.done
	killed.Store(true)
	for afterKill.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if afterKill.Load() < 5 {
		t.Fatalf("the surviving replica served %d enrollments after the kill", afterKill.Load())
	}
	if _, err := dtaclient.Info(context.Background(), nil, b.addr, &e.Renewal.DTAs[0]); err != nil {
		t.Fatalf("the surviving replica: %v", err)
	}
	b.term(t)
	ro, err := OpenStore(d.db, &StoreOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	log, err := ro.AuditLog(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	okByCode := map[string]int{}
	permitRows := 0
	for _, r := range log {
		switch {
		case r.Action == "enroll" && r.Result == "ok":
			okByCode[codeInDetail(r.Detail)]++
		case r.Action == "permits" && r.Result == "ok" && r.Identity == "permit-user":
			permitRows++
		}
	}
	for id, n := range got {
		if n != 1 || okByCode[id] != 1 {
			t.Errorf("code %s: the clients got %d shares, the audit log has %d issuances", id, n, okByCode[id])
		}
	}
	for id, n := range okByCode {
		if n != 1 {
			t.Errorf("code %s issued %d times", id, n)
		}
	}
	if int64(permitRows) < permitsOK.Load() {
		t.Errorf("%d permit fetches answered, %d audited", permitsOK.Load(), permitRows)
	}
	t.Logf("%d enrollments (%d after the kill), %d permit fetches", enrolled.Load(), afterKill.Load(), permitsOK.Load())
	verifyAuditCLI(t, d)
}

// TestPGRestart: PostgreSQL restarted under load. While it is down the
// replicas answer 503 on /healthz; once it is back they serve again on
// their own, without a restart.
func TestPGRestart(t *testing.T) {
	root := t.TempDir()
	d := newPGDTADir(t, root, 1)
	a, b := d.serve(t), d.serve(t)
	e, err := dtaclient.Enroll(context.Background(), nil, []dtaclient.DTACode{{Address: a.addr, Code: parseCode(t, d.code(t, "client", "load"))}})
	if err != nil {
		t.Fatal(err)
	}
	today := pairing.Day(time.Now())
	opt := &dtaclient.ClientOptions{Timeout: 3 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var okCount atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, _, err := dtaclient.FetchPermits(ctx, opt, at(e.Renewal, []string{a.addr, b.addr}[w%2]), []uint64{today}); err == nil {
					okCount.Add(1)
				}
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()
	for _, p := range []*serveProc{a, b} {
		if c := healthz(p.status); c != http.StatusOK {
			t.Fatalf("healthz before: %d", c)
		}
	}
	if err := pgSrv.Halt(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			pgSrv.Resume()
		}
	}()
	for _, p := range []*serveProc{a, b} {
		if c := healthz(p.status); c != http.StatusServiceUnavailable {
			t.Fatalf("healthz with PostgreSQL down: %d, want 503", c)
		}
	}
	if err := pgSrv.Resume(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	for _, p := range []*serveProc{a, b} {
		deadline := time.Now().Add(30 * time.Second)
		for healthz(p.status) != http.StatusOK && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if c := healthz(p.status); c != http.StatusOK {
			t.Fatalf("healthz after PostgreSQL came back: %d", c)
		}
		var err error
		for time.Now().Before(deadline) {
			if _, _, err = dtaclient.FetchPermits(context.Background(), opt, at(e.Renewal, p.addr), []uint64{today}); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("replica %s after PostgreSQL came back: %v", p.addr, err)
		}
		select {
		case <-p.done:
			t.Fatalf("replica exited: %v\n%s", p.err, p.log.String())
		default:
		}
	}
	cancel()
	wg.Wait()
	a.term(t)
	b.term(t)
	verifyAuditCLI(t, d)
}

// TestMigrateDB moves an SQLite D-TA with history onto PostgreSQL; the copy
// verifies with the same head, and a replica on it serves the identities
// enrolled before.
func TestMigrateDB(t *testing.T) {
	root := t.TempDir()
	d := newDTADir(t, root, 1)
	p := d.serve(t)
	e, err := dtaclient.Enroll(context.Background(), nil, []dtaclient.DTACode{{Address: p.addr, Code: parseCode(t, d.code(t, "client", "moved"))}})
	if err != nil {
		t.Fatal(err)
	}
	d.code(t, "client", "later")
	mustMtls(t, d.dir, "ta", "revoke", "--db", d.db, "--kind", "client", "--id", "later")
	p.term(t)
	url := pgDatabase(t)
	out := mustMtls(t, d.dir, "ta", "migrate-db", "--from", d.db, "--to", url)
	if !strings.Contains(out, "verifies on both with the same head") {
		t.Fatalf("migrate-db:\n%s", out)
	}
	if _, errOut, err := runMtls(t, d.dir, "ta", "migrate-db", "--from", d.db, "--to", url); err == nil || !strings.Contains(errOut, "already belongs") {
		t.Fatalf("a second migrate-db into the same database: %v %s", err, errOut)
	}
	pd := &dtaDir{dir: d.dir, share: d.share, db: url, fp: d.fp}
	verifyAuditCLI(t, pd)
	q := pd.serve(t)
	if _, _, err := dtaclient.FetchPermits(context.Background(), nil, at(e.Renewal, q.addr), []uint64{pairing.Day(time.Now())}); err != nil {
		t.Fatalf("after the move: %v", err)
	}
	q.term(t)
	verifyAuditCLI(t, pd)
}

// TestAuditVerifyCLI: a silent `UPDATE identities SET revoked_at=NULL` by
// someone with the database, on SQLite and on PostgreSQL, makes `ta audit
// --verify` exit 1 and say what changed; `ta list` and `ta audit` work
// with the store given in $MTLS_DTA_DB and read-only.
func TestAuditVerifyCLI(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			root := t.TempDir()
			var d *dtaDir
			if engine == "sqlite" {
				d = newDTADir(t, root, 1)
			} else {
				d = newPGDTADir(t, root, 1)
			}
			p := d.serve(t)
			if _, err := dtaclient.Enroll(context.Background(), nil, []dtaclient.DTACode{{Address: p.addr, Code: parseCode(t, d.code(t, "client", "mallory"))}}); err != nil {
				t.Fatal(err)
			}
			mustMtls(t, d.dir, "ta", "revoke", "--db", d.db, "--kind", "client", "--id", "mallory", "--reason", "stolen laptop")
			p.term(t)
			verifyAuditCLI(t, d)
			if engine == "sqlite" {
				st, err := OpenStore(d.db, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := st.db.Exec(`UPDATE identities SET revoked_at=NULL WHERE identity='mallory'`); err != nil {
					t.Fatal(err)
				}
				st.db.Close() // not Close: no seal, nothing else written
			} else {
				pgExec(t, d.db, `UPDATE identities SET revoked_at=NULL WHERE identity='mallory'`)
			}
			cmd := exec.Command(mtlsBin(t), "ta", "audit", "--verify")
			cmd.Env = append(os.Environ(), "MTLS_DTA_DB="+d.db)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "revocation undone outside the service") {
				t.Fatalf("ta audit --verify after a silent un-revocation: %v\n%s", err, out)
			}
			cmd = exec.Command(mtlsBin(t), "ta", "list")
			cmd.Env = append(os.Environ(), "MTLS_DTA_DB="+d.db)
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "mallory") {
				t.Fatalf("ta list from $MTLS_DTA_DB: %v\n%s", err, out)
			}
		})
	}
}
