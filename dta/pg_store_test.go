package dta

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// TestPGStoreMigrations: processes opening a new PostgreSQL database at
// once run each migration exactly once (under the advisory lock); a schema
// newer than the program is refused; the store is bound to one D-TA.
func TestPGStoreMigrations(t *testing.T) {
	url := pgDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			st, err := OpenStore(url, nil)
			if err == nil {
				st.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := OpenStore(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Engine() != "postgres" {
		t.Fatalf("engine %s", st.Engine())
	}
	var n int
	st.queryRow(`SELECT COUNT(*) FROM migrations`).Scan(&n)
	if n != schemaVersions {
		t.Fatalf("%d migrations recorded, want %d", n, schemaVersions)
	}
	m, _ := pairing.NewMasterShare(rand.Reader)
	if _, err := st.Bind(m); err != nil {
		t.Fatal(err)
	}
	other, _ := pairing.NewMasterShare(rand.Reader)
	if _, err := st.Bind(other); !errors.Is(err, ErrWrongMaster) {
		t.Fatalf("another master share: %v", err)
	}
	if _, err := st.CreateCode(dtawire.KindClient, "alice", time.Hour, "t"); err != nil {
		t.Fatal(err)
	}
	if _, added, err := st.SealAudit(context.Background()); err != nil || !added {
		t.Fatalf("seal: %v %v", added, err)
	}
	for _, q := range []string{`UPDATE audit SET result='forged'`, `DELETE FROM audit`, `DELETE FROM audit_heads`} {
		if _, err := st.db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st.Close()
	pgExec(t, url, `INSERT INTO migrations(version, applied_at) VALUES(99, 0)`)
	if _, err := OpenStore(url, nil); err == nil || !strings.Contains(err.Error(), "newer than this program") {
		t.Fatalf("a newer schema was opened: %v", err)
	}
	if _, err := OpenStore(url, &StoreOptions{ReadOnly: true}); err == nil {
		t.Fatal("a newer schema was opened read-only")
	}
}

// TestPGReadOnly: a read-only store reads and cannot write.
func TestPGReadOnly(t *testing.T) {
	url := pgDatabase(t)
	st, err := OpenStore(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := pairing.NewMasterShare(rand.Reader)
	st.Bind(m)
	st.Close()
	ro, err := OpenStore(url, &StoreOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, _, err := ro.List(); err != nil {
		t.Fatal(err)
	}
	if _, err := ro.db.Exec(`INSERT INTO meta(key, value) VALUES('x', 'y')`); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a read-only store wrote: %v", err)
	}
	if _, err := ro.CreateCode(dtawire.KindClient, "a", time.Hour, "t"); err == nil {
		t.Fatal("CreateCode on a read-only store")
	}
}

// auditTamperCase is one thing someone with write access to the database
// does behind the service's back; VerifyAudit must report it.
type auditTamperCase struct {
	name, sqlite, pg, want string
}

var auditTampers = []auditTamperCase{
	{"revocation undone", `UPDATE identities SET revoked_at=NULL WHERE identity='mallory'`, ``, "revocation undone"},
	{"code reset", `UPDATE codes SET used_at=NULL WHERE identity='bob'`, ``, "marked unused"},
	{"row deleted", `DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE action='revoke'`,
		`ALTER TABLE audit DISABLE TRIGGER audit_append_only; DELETE FROM audit WHERE action='revoke'`, "rows removed"},
	{"row edited", `DROP TRIGGER audit_no_update; UPDATE audit SET remote='10.9.9.9' WHERE action='revoke'`,
		`ALTER TABLE audit DISABLE TRIGGER audit_append_only; UPDATE audit SET remote='10.9.9.9' WHERE action='revoke'`, "a row was changed"},
	{"renewal secret swapped", `UPDATE identities SET sealed=x'0102' WHERE identity='bob'`,
		`UPDATE identities SET sealed='\x0102' WHERE identity='bob'`, "replaced outside the service"},
	{"pending secret planted", `UPDATE identities SET pending_sealed=x'0102', pending_key_id='kx' WHERE identity='bob'`,
		`UPDATE identities SET pending_sealed='\x0102', pending_key_id='kx' WHERE identity='bob'`, "pending renewal secret"},
	{"code secret swapped", `UPDATE codes SET sealed=x'0102' WHERE identity='carol'`,
		`UPDATE codes SET sealed='\x0102' WHERE identity='carol'`, "its secret is not the one"},
	{"code redirected", `UPDATE codes SET identity='mallory2' WHERE identity='carol'`, ``, "changed outside the service"},
	{"old secret restored after reinstatement", `UPDATE identities SET sealed=x'7365616c6564' WHERE identity='dave'`,
		`UPDATE identities SET sealed='\x7365616c6564' WHERE identity='dave'`, "reinstated without a new enrollment"},
	{"code injected", `INSERT INTO codes(id, sealed, kind, identity, created_at, expires_at) VALUES('00112233445566ff', x'00', 'client', 'eve', 0, 9000000000000000000)`,
		`INSERT INTO codes(id, sealed, kind, identity, created_at, expires_at) VALUES('00112233445566ff', '\x00', 'client', 'eve', 0, 9000000000000000000)`, "created outside the service"},
}

// fillAuditStore enrolls bob and mallory through a store (no network) and
// revokes mallory, then chains the log.
func fillAuditStore(t *testing.T, st *Store) {
	t.Helper()
	m, _ := pairing.NewMasterShare(rand.Reader)
	if _, err := st.Bind(m); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"bob", "mallory", "dave"} {
		c, err := st.CreateCode(dtawire.KindClient, id, time.Hour, "t")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.redeemCode(c.ID, func(dtawire.Kind, string) ([]byte, string, error) { return []byte("sealed"), "kid", nil }, "127.0.0.1", "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateCode(dtawire.KindClient, "carol", time.Hour, "t"); err != nil {
		t.Fatal(err)
	}
	if err := st.Revoke(dtawire.KindClient, "mallory", "stolen", "t"); err != nil {
		t.Fatal(err)
	}
	if err := st.Revoke(dtawire.KindClient, "dave", "lost", "t"); err != nil {
		t.Fatal(err)
	}
	if err := st.Reinstate(dtawire.KindClient, "dave", "t"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.SealAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := st.VerifyAudit(context.Background(), nil)
	if err != nil || !v.OK() || v.Unsealed != 0 || v.Sealed == 0 {
		t.Fatalf("before tampering: %+v %v", v, err)
	}
}

// TestAuditTamperEvident runs every tampering on SQLite and PostgreSQL:
// `ta audit --verify` (VerifyAudit) reports each one.
func TestAuditTamperEvident(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, tc := range auditTampers {
			t.Run(engine+"/"+tc.name, func(t *testing.T) {
				var db, q string
				if engine == "sqlite" {
					db, q = filepath.Join(t.TempDir(), "dta.db"), tc.sqlite
				} else {
					db, q = pgDatabase(t), tc.pg
					if q == "" {
						q = tc.sqlite
					}
				}
				st, err := OpenStore(db, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				fillAuditStore(t, st)
				if _, err := st.db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				v, err := st.VerifyAudit(context.Background(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if v.OK() || !strings.Contains(strings.Join(v.Problems, "\n"), tc.want) {
					t.Fatalf("%s not reported: %q", tc.name, v.Problems)
				}
			})
		}
	}
}

// TestAuditPinnedHead: cutting the chain back (deleting the last head and
// its rows, as a writer with the database can) is caught by a head kept
// outside the database.
func TestAuditPinnedHead(t *testing.T) {
	st, err := OpenStore(filepath.Join(t.TempDir(), "dta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fillAuditStore(t, st)
	st.Audit("permits", dtawire.KindClient, "bob", "127.0.0.1", "ok", "")
	h, added, err := st.SealAudit(context.Background())
	if err != nil || !added {
		t.Fatalf("seal: %v %v", added, err)
	}
	st.db.Exec(`DROP TRIGGER audit_heads_no_delete; DROP TRIGGER audit_no_delete`)
	if _, err := st.db.Exec(`DELETE FROM audit_heads WHERE n=?`, h.N); err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.Exec(`DELETE FROM audit WHERE seq>?`, h.LastSeq-h.Count); err != nil {
		t.Fatal(err)
	}
	v, err := st.VerifyAudit(context.Background(), nil)
	if err != nil || !v.OK() {
		t.Fatalf("without the pinned head a clean cut verifies (expected): %v %v", v.Problems, err)
	}
	v, err = st.VerifyAudit(context.Background(), &h)
	if err != nil || v.OK() {
		t.Fatalf("the cut was not caught by the pinned head: %+v %v", v, err)
	}
}

// TestMerkleRoot pins the tree shape: changing any leaf, or the order,
// changes the root; a tree of one leaf is the leaf.
func TestMerkleRoot(t *testing.T) {
	var leaves [][32]byte
	for i := range 7 {
		leaves = append(leaves, [32]byte{byte(i)})
	}
	r := merkleRoot(leaves)
	if merkleRoot(leaves[:1]) != leaves[0] {
		t.Fatal("one leaf")
	}
	for i := range leaves {
		l2 := append([][32]byte(nil), leaves...)
		l2[i][5] ^= 1
		if merkleRoot(l2) == r {
			t.Fatalf("leaf %d changed, same root", i)
		}
	}
	l2 := append([][32]byte(nil), leaves...)
	l2[2], l2[3] = l2[3], l2[2]
	if merkleRoot(l2) == r {
		t.Fatal("order changed, same root")
	}
	if merkleRoot(leaves[:6]) == r {
		t.Fatal("leaf removed, same root")
	}
}

// TestPGAuditConcurrentSealers: two stores (as two replicas) append audit
// rows from many goroutines while both seal in a loop; the chain ends up
// linear (heads 1..n, no fork), every row is under exactly one head (no
// gap) and it verifies.
func TestPGAuditConcurrentSealers(t *testing.T) {
	url := pgDatabase(t)
	var stores []*Store
	for range 2 {
		st, err := OpenStore(url, &StoreOptions{MaxConns: 24})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores = append(stores, st)
	}
	m, _ := pairing.NewMasterShare(rand.Reader)
	for _, st := range stores {
		if _, err := st.Bind(m); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var sealers sync.WaitGroup
	var heads [2]int
	for i, st := range stores {
		sealers.Go(func() {
			for ctx.Err() == nil {
				if _, added, err := st.SealAudit(context.Background()); err != nil {
					t.Error(err)
					return
				} else if added {
					heads[i]++
				}
			}
		})
	}
	const writers, rows = 16, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			st := stores[w%2]
			for i := range rows {
				if err := st.Audit("permits", dtawire.KindClient, "u"+strconv.Itoa(w), "127.0.0.1", "ok", strconv.Itoa(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	cancel()
	sealers.Wait()
	if _, _, err := stores[0].SealAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := stores[1].VerifyAudit(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK() || v.Unsealed != 0 || v.Sealed != writers*rows+1 {
		t.Fatalf("after concurrent writers and sealers: %+v", v)
	}
	if heads[0] == 0 || heads[1] == 0 {
		t.Logf("heads added per sealer: %v (one sealer won every race)", heads)
	}
	t.Logf("%d rows under %d heads (sealer heads %v)", v.Sealed, v.Heads, heads)
}

// TestSQLiteSchemaUpgrade: a store at schema version 1 (before the audit
// chain) is migrated on open; its old rows go under the first head.
func TestSQLiteSchemaUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE migrations(version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		sqliteMigrations[0],
		`INSERT INTO migrations VALUES(1, 0)`,
		`INSERT INTO audit(time, action, kind, identity, remote, result) VALUES(1, 'revoke', 'client', 'old', 'cli', 'ok')`,
		`INSERT INTO identities(kind, identity, revoked_at) VALUES('client', 'old', 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	os.Chmod(path, 0o600)
	st, err := OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.SealAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := st.VerifyAudit(context.Background(), nil)
	if err != nil || !v.OK() || v.Sealed != 1 {
		t.Fatalf("after the upgrade: %+v %v", v, err)
	}
}

// TestPGConcurrentBind: replicas started at once on a new database all
// bind it to their (same) master share; one with another share is refused.
func TestPGConcurrentBind(t *testing.T) {
	url := pgDatabase(t)
	m, _ := pairing.NewMasterShare(rand.Reader)
	other, _ := pairing.NewMasterShare(rand.Reader)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			st, err := OpenStore(url, nil)
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			share := m
			if i == 5 {
				share = other
			}
			_, errs[i] = st.Bind(share)
		})
	}
	wg.Wait()
	wrong := 0
	for i, err := range errs {
		switch {
		case errors.Is(err, ErrWrongMaster):
			wrong++
		case err != nil:
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	// Either the odd one out lost the race (refused), or it won and the
	// five others were refused.
	if wrong != 1 && wrong != 5 {
		t.Fatalf("%d replicas refused, want 1 or 5: %v", wrong, errs)
	}
	st, err := OpenStore(url, &StoreOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	st.queryRow(`SELECT COUNT(*) FROM audit WHERE action='init'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d init rows, want 1", n)
	}
}

// TestPGAuthorizeWaitsForAuditLock: the one-statement authorize takes the
// audit lock in shared mode before its row draws a sequence number, so
// the sealer's exclusive hold (watermark) sees every numbered row
// committed: while another session holds the lock exclusively, the
// statement waits and the audit sequence does not move; once released,
// the row is written.
func TestPGAuthorizeWaitsForAuditLock(t *testing.T) {
	url := pgDatabase(t)
	st, err := OpenStore(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, _ := pairing.NewMasterShare(rand.Reader)
	if _, err := st.Bind(m); err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateCode(dtawire.KindClient, "alice", time.Hour, "t")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.redeemCode(c.ID, func(dtawire.Kind, string) ([]byte, string, error) { return []byte("sealed"), "kid", nil }, "127.0.0.1", "test"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lc, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close(ctx)
	tx, err := lc.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgLockAudit)); err != nil {
		t.Fatal(err)
	}
	seq := func() (n int64) {
		if err := tx.QueryRow(ctx, `SELECT last_value FROM audit_seq_seq`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := seq()
	done := make(chan error, 1)
	go func() { done <- st.authorize(dtawire.KindClient, "alice", "", "permits", "127.0.0.1", "days 1") }()
	// Wait until the statement waits for the lock (PostgreSQL's own view).
	for waiting := false; !waiting; {
		select {
		case err := <-done:
			t.Fatalf("authorize returned while the audit lock was held exclusively: %v", err)
		default:
		}
		if err := tx.QueryRow(ctx, `SELECT EXISTS(SELECT 1 FROM pg_locks WHERE locktype='advisory' AND NOT granted)`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if after := seq(); after != before {
		t.Fatalf("the audit sequence moved from %d to %d before the lock was granted", before, after)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var n int
	if err := st.queryRow(`SELECT COUNT(*) FROM audit WHERE action='permits' AND result='ok'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d permits rows (%v), want 1", n, err)
	}
}
