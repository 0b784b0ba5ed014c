package dta

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// Store is a D-TA's database: enrollment codes, enrolled identities and the
// hash-chained audit log. It runs on one of two engines behind the same
// methods (the engine interface below):
//
//   - SQLite (the default, zero setup): one file, WAL mode, mode 0600.
//     Several processes on one machine may open it at once (the service and
//     the operator commands).
//   - PostgreSQL (a postgres:// or postgresql:// URL): any number of
//     `ta serve` replicas of one D-TA share the database. Everything that
//     must hold across replicas (a code redeems once, a revocation is seen
//     on the next request, a rotation promotes once, one audit chain) comes
//     from PostgreSQL transactions, row locks and constraints, never from a
//     lock inside one process.
//
// The master share is never stored; the store keeps only its fingerprint
// and the public key that secrets are sealed to.
type Store struct {
	db       *sql.DB
	eng      engine
	path     string // what to name the store in messages (never a password)
	now      func() time.Time
	rand     io.Reader
	readOnly bool
	// Set by Bind or read from meta.
	fp  pairing.Fingerprint
	pub *ecdh.PublicKey

	cacheMu sync.Mutex
	cache   map[[32]byte][]byte // unsealed secrets (store_ops.go)

	// wmu, on SQLite, queues this process's writers in Go: SQLite runs one
	// writer at a time anyway, and a writer refused by SQLite polls with
	// sleeps (1, 2, 5, 10 ms…) where a Go mutex hands over at once.
	// Writers in other processes (operator commands) still meet SQLite's
	// lock and busy timeout. nil on PostgreSQL.
	wmu *sync.Mutex

	// stmts holds the prepared statements of the per-request queries
	// (hot), keyed by their text, on engines whose driver does not cache
	// them itself (SQLite: parsing a statement costs more than running it).
	stmts sync.Map
}

// engine is what differs between SQLite and PostgreSQL. Queries are written
// once with ? placeholders; rebind turns them into the engine's syntax.
type engine interface {
	name() string
	rebind(q string) string
	// migration returns the text of schema version v (1-based) for this
	// engine; every engine has the same versions.
	migration(v int) string
	// lockMigrations serialises migrations across processes; the returned
	// function releases the lock.
	lockMigrations(ctx context.Context, c *sql.Conn) (func(), error)
	// beginWrite runs first in every write transaction (PostgreSQL takes
	// the audit sealer's lock in shared mode, see audit_chain.go).
	beginWrite(ctx context.Context, tx *sql.Tx) error
	// watermark returns a sequence number such that every audit row at or
	// below it is committed and no row below it will appear later.
	watermark(ctx context.Context, db *sql.DB) (int64, error)
	// check verifies the database's own integrity.
	check(ctx context.Context, db *sql.DB, thorough bool) error
	// isConflict reports a unique-constraint violation.
	isConflict(err error) bool
	// auditIfAuthorized is one statement, run as its own transaction,
	// that appends an "ok" audit row for an identity only while it is in
	// good standing and the client did not name its pending secret
	// (authorize, store_ops.go). Its ? arguments: time, action, remote,
	// detail, kind, identity, the client's key ID.
	auditIfAuthorized() string
	// cachesStatements reports whether the driver keeps prepared
	// statements itself (pgx does, per connection).
	cachesStatements() bool
}

// StoreOptions tunes OpenStore; the zero value is the production setting.
type StoreOptions struct {
	Now  func() time.Time // nil: time.Now
	Rand io.Reader        // nil: crypto/rand
	// Synchronous is SQLite's synchronous pragma: "FULL" (default: a
	// committed issuance survives a power loss) or "NORMAL" (survives a
	// process crash; faster on slow disks). PostgreSQL ignores it.
	Synchronous string
	// ReadOnly opens the store without write access and without running
	// migrations (`ta list`, `ta audit`: an auditor needs no write access).
	ReadOnly bool
	// MaxConns bounds the connections to the database (0: 8 for SQLite,
	// 16 for PostgreSQL).
	MaxConns int
}

// Errors of the store; the service maps them to the spec's error codes.
var (
	ErrNotFound    = errors.New("dta: no such identity or code")
	ErrRevoked     = errors.New("dta: identity revoked")
	ErrCodeUsed    = errors.New("dta: enrollment code already used")
	ErrCodeExpired = errors.New("dta: enrollment code expired")
	ErrNotBound    = errors.New("dta: store not initialised with a master share (run `mtls ta init-db --master … --db …` or start `mtls ta serve` once)")
	ErrWrongMaster = errors.New("dta: the master share does not belong to this store (fingerprints differ)")
)

// schemaVersions is the number of schema versions this program knows; each
// engine has the text of every one (store_sqlite.go, store_pg.go). Never
// edit a released version: append a new one.
const schemaVersions = 2

// IsDatabaseURL reports whether a --db value names a PostgreSQL database
// rather than an SQLite file.
func IsDatabaseURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// OpenStore opens the store named by db: a PostgreSQL URL (postgres://…)
// or the path of an SQLite file (created with mode 0600 if needed). It
// applies pending migrations (one process at a time, under a lock) and
// refuses a schema newer than this program.
func OpenStore(db string, opt *StoreOptions) (*Store, error) {
	if opt == nil {
		opt = &StoreOptions{}
	}
	var s *Store
	var err error
	if IsDatabaseURL(db) {
		s, err = openPG(db, opt)
	} else {
		s, err = openSQLite(db, opt)
	}
	if err != nil {
		return nil, err
	}
	s.now, s.rand, s.readOnly = opt.Now, opt.Rand, opt.ReadOnly
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if opt.ReadOnly {
		err = s.checkVersion()
	} else {
		err = s.migrate()
	}
	if err == nil {
		err = s.loadMeta()
	}
	if err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the store. A store open for writing first chains the audit
// rows not yet under a head (best effort: the next writer or `ta serve`
// replica seals them otherwise), so an operator command's entries are
// provable without waiting for the service.
func (s *Store) Close() error {
	if !s.readOnly && s.pub != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.SealAudit(ctx)
		cancel()
	}
	s.stmts.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// Engine names the database engine: "sqlite" or "postgres".
func (s *Store) Engine() string { return s.eng.name() }

// tx is a transaction whose queries are written with ? placeholders.
type tx struct {
	*sql.Tx
	eng     engine
	release func() // unlocks Store.wmu; nil once released or without it
}

// Commit commits and releases the store's writer lock.
func (t *tx) Commit() error {
	err := t.Tx.Commit()
	t.done()
	return err
}

// Rollback rolls back (a no-op after Commit) and releases the store's
// writer lock.
func (t *tx) Rollback() error {
	err := t.Tx.Rollback()
	t.done()
	return err
}

func (t *tx) done() {
	if t.release != nil {
		t.release()
		t.release = nil
	}
}

func (t *tx) Exec(q string, args ...any) (sql.Result, error) {
	return t.Tx.Exec(t.eng.rebind(q), args...)
}
func (t *tx) QueryRow(q string, args ...any) *sql.Row {
	return t.Tx.QueryRow(t.eng.rebind(q), args...)
}
func (t *tx) Query(q string, args ...any) (*sql.Rows, error) {
	return t.Tx.Query(t.eng.rebind(q), args...)
}

// begin starts a write transaction.
func (s *Store) begin() (*tx, error) {
	if s.readOnly {
		return nil, fmt.Errorf("dta: store %s is open read-only", s.path)
	}
	ctx := context.Background()
	var release func()
	if s.wmu != nil {
		s.wmu.Lock()
		release = s.wmu.Unlock
	}
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		if release != nil {
			release()
		}
		return nil, fmt.Errorf("dta: store %s: %w", s.path, err)
	}
	if err := s.eng.beginWrite(ctx, t); err != nil {
		t.Rollback()
		if release != nil {
			release()
		}
		return nil, fmt.Errorf("dta: store %s: %w", s.path, err)
	}
	return &tx{Tx: t, eng: s.eng, release: release}, nil
}

func (s *Store) queryRow(q string, args ...any) *sql.Row {
	return s.db.QueryRow(s.eng.rebind(q), args...)
}

// hot returns the prepared statement of q, a constant query run on every
// request, or nil when the driver caches statements itself (or preparing
// failed: the caller then runs q unprepared, which reports the error).
func (s *Store) hot(q string) *sql.Stmt {
	if s.eng.cachesStatements() {
		return nil
	}
	if st, ok := s.stmts.Load(q); ok {
		return st.(*sql.Stmt)
	}
	st, err := s.db.Prepare(s.eng.rebind(q))
	if err != nil {
		return nil
	}
	if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt)
	}
	return st
}

// queryRowHot is queryRow for the queries of every request.
func (s *Store) queryRowHot(q string, args ...any) *sql.Row {
	if st := s.hot(q); st != nil {
		return st.QueryRow(args...)
	}
	return s.queryRow(q, args...)
}

// execHot runs a write statement of every request as its own
// transaction.
func (s *Store) execHot(q string, args ...any) (sql.Result, error) {
	if s.wmu != nil {
		s.wmu.Lock()
		defer s.wmu.Unlock()
	}
	if st := s.hot(q); st != nil {
		return st.Exec(args...)
	}
	return s.db.Exec(s.eng.rebind(q), args...)
}

func (s *Store) query(q string, args ...any) (*sql.Rows, error) {
	return s.db.Query(s.eng.rebind(q), args...)
}

func (s *Store) schemaVersion(q func(string, ...any) *sql.Row) (int, error) {
	var have int
	if err := q(`SELECT COALESCE(MAX(version), 0) FROM migrations`).Scan(&have); err != nil {
		return 0, fmt.Errorf("dta: store %s: %w", s.path, err)
	}
	return have, nil
}

// checkVersion is what a read-only open does instead of migrating.
func (s *Store) checkVersion() error {
	have, err := s.schemaVersion(s.queryRow)
	if err != nil {
		return fmt.Errorf("%w (a read-only open needs a store created by `ta init-db` or `ta serve`)", err)
	}
	if have > schemaVersions {
		return fmt.Errorf("dta: store %s has schema version %d, newer than this program (%d)", s.path, have, schemaVersions)
	}
	if have < schemaVersions {
		return fmt.Errorf("dta: store %s has schema version %d; start `mtls ta serve` (or `ta init-db`) of this version once to migrate it to %d", s.path, have, schemaVersions)
	}
	return nil
}

func (s *Store) migrate() error {
	ctx := context.Background()
	c, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("dta: store %s: %w", s.path, err)
	}
	defer c.Close()
	unlock, err := s.eng.lockMigrations(ctx, c)
	if err != nil {
		return fmt.Errorf("dta: store %s: migration lock: %w", s.path, err)
	}
	defer unlock()
	t, err := c.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("dta: store %s: %w", s.path, err)
	}
	defer t.Rollback()
	if _, err := t.Exec(`CREATE TABLE IF NOT EXISTS migrations(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("dta: store %s: %w", s.path, err)
	}
	have, err := s.schemaVersion(func(q string, a ...any) *sql.Row { return t.QueryRow(q, a...) })
	if err != nil {
		return err
	}
	if have > schemaVersions {
		return fmt.Errorf("dta: store %s has schema version %d, newer than this program (%d)", s.path, have, schemaVersions)
	}
	for v := have + 1; v <= schemaVersions; v++ {
		if _, err := t.Exec(s.eng.migration(v)); err != nil {
			return fmt.Errorf("dta: store %s: migration %d: %w", s.path, v, err)
		}
		if _, err := t.Exec(s.eng.rebind(`INSERT INTO migrations(version, applied_at) VALUES(?, ?)`), v, s.now().UnixNano()); err != nil {
			return fmt.Errorf("dta: store %s: %w", s.path, err)
		}
	}
	return t.Commit()
}

func (s *Store) loadMeta() error {
	var fp, pub string
	err := s.queryRow(`SELECT (SELECT value FROM meta WHERE key='fingerprint'), (SELECT value FROM meta WHERE key='seal_public')`).Scan(&nullStr{&fp}, &nullStr{&pub})
	if err != nil {
		return fmt.Errorf("dta: store %s: %w", s.path, err)
	}
	if fp == "" {
		return nil
	}
	f, err := pairing.ParseFingerprint(fp)
	if err != nil {
		return fmt.Errorf("dta: store %s: meta: %w", s.path, err)
	}
	pb, err := hex.DecodeString(pub)
	if err != nil {
		return fmt.Errorf("dta: store %s: meta seal_public: %w", s.path, err)
	}
	k, err := ecdh.X25519().NewPublicKey(pb)
	if err != nil {
		return fmt.Errorf("dta: store %s: meta seal_public: %w", s.path, err)
	}
	s.fp, s.pub = f, k
	return nil
}

type nullStr struct{ s *string }

func (n *nullStr) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*n.s = ""
	case string:
		*n.s = v
	case []byte:
		*n.s = string(v)
	default:
		return fmt.Errorf("unexpected %T", v)
	}
	return nil
}

// Bind ties the store to a master share: on first use it records the
// share's fingerprint and sealing public key in the meta table; afterwards
// it refuses another share (ErrWrongMaster), so a replica started against
// the database of another D-TA does not start. It returns the sealing
// private key, which the service uses to open secrets.
func (s *Store) Bind(m *pairing.MasterShare) (*ecdh.PrivateKey, error) {
	priv, err := sealKey(m)
	if err != nil {
		return nil, err
	}
	fp := m.Fingerprint()
	check := func() (*ecdh.PrivateKey, error) {
		if s.fp != fp || !s.pub.Equal(priv.PublicKey()) {
			return nil, fmt.Errorf("%w: store %s belongs to D-TA %s, the share is D-TA %s", ErrWrongMaster, s.path, s.fp, fp)
		}
		return priv, nil
	}
	if s.pub != nil {
		return check()
	}
	t, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer t.Rollback()
	if _, err := t.Exec(`INSERT INTO meta(key, value) VALUES('fingerprint', ?), ('seal_public', ?)`, fp.String(), hex.EncodeToString(priv.PublicKey().Bytes())); err != nil {
		t.Rollback()
		// Two replicas binding a new database at once: the loser reads
		// what the winner wrote.
		if s.eng.isConflict(err) {
			if lerr := s.loadMeta(); lerr == nil && s.pub != nil {
				return check()
			}
		}
		return nil, fmt.Errorf("dta: store %s: bind: %w", s.path, err)
	}
	if err := insertAudit(t, s.now(), "init", "", "", "local", "ok", "D-TA "+fp.String()); err != nil {
		return nil, err
	}
	if err := t.Commit(); err != nil {
		return nil, fmt.Errorf("dta: store %s: bind: %w", s.path, err)
	}
	s.fp, s.pub = fp, priv.PublicKey()
	return priv, nil
}

// Fingerprint returns the fingerprint of the D-TA the store belongs to.
func (s *Store) Fingerprint() (pairing.Fingerprint, error) {
	if s.pub == nil {
		return pairing.Fingerprint{}, ErrNotBound
	}
	return s.fp, nil
}

func insertAudit(t *tx, tm time.Time, action, kind, identity, remote, result, detail string) error {
	_, err := t.Exec(`INSERT INTO audit(time, action, kind, identity, remote, result, detail) VALUES(?, ?, ?, ?, ?, ?, ?)`,
		tm.UnixNano(), action, kind, identity, remote, result, detail)
	if err != nil {
		return fmt.Errorf("dta: audit: %w", err)
	}
	return nil
}

// Audit appends one entry to the audit log in its own transaction.
func (s *Store) Audit(action string, kind dtawire.Kind, identity, remote, result, detail string) error {
	t, err := s.begin()
	if err != nil {
		return err
	}
	defer t.Rollback()
	if err := insertAudit(t, s.now(), action, string(kind), identity, remote, result, detail); err != nil {
		return err
	}
	return t.Commit()
}

// IntegrityCheck runs the engine's thorough integrity check (SQLite:
// PRAGMA integrity_check, O(size)).
func (s *Store) IntegrityCheck() error {
	return s.eng.check(context.Background(), s.db, true)
}

// QuickCheck runs the engine's quick check (what `ta serve` runs at start).
func (s *Store) QuickCheck() error {
	return s.eng.check(context.Background(), s.db, false)
}

// Name names the store in messages and logs: the file, or the URL without
// its password.
func (s *Store) Name() string { return s.path }
