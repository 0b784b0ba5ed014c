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
	"net/url"
	"os"
	"sync"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite driver "sqlite"

	"github.com/milagro-go/milagro/pairing"
)

// Store is a D-TA's database: enrollment codes, enrolled identities and the
// append-only audit log, in one SQLite file (WAL mode, mode 0600). Several
// processes may open the same store at once (the service and operator
// commands). The master share is never stored; the store keeps only its
// fingerprint and the public key that secrets are sealed to.
type Store struct {
	db   *sql.DB
	path string
	now  func() time.Time
	rand io.Reader
	// Set by Bind or read from meta.
	fp  pairing.Fingerprint
	pub *ecdh.PublicKey

	cacheMu sync.Mutex
	cache   map[[32]byte][]byte // unsealed secrets (store_ops.go)
}

// StoreOptions tunes OpenStore; the zero value is the production setting.
type StoreOptions struct {
	Now  func() time.Time // nil: time.Now
	Rand io.Reader        // nil: crypto/rand
	// Synchronous is SQLite's synchronous pragma: "FULL" (default: a
	// committed issuance survives a power loss) or "NORMAL" (survives a
	// process crash; faster on slow disks).
	Synchronous string
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

// migrations are applied in order, each once; the migrations table records
// which ran. Never edit a released migration: append a new one.
var migrations = []string{
	// 1: initial schema.
	`CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
	CREATE TABLE codes(
		id TEXT PRIMARY KEY,
		sealed BLOB NOT NULL,
		kind TEXT NOT NULL,
		identity TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		used_at INTEGER);
	CREATE TABLE identities(
		kind TEXT NOT NULL,
		identity TEXT NOT NULL,
		sealed BLOB,
		key_id TEXT,
		pending_sealed BLOB,
		pending_key_id TEXT,
		enrolled_at INTEGER,
		revoked_at INTEGER,
		reason TEXT NOT NULL DEFAULT '',
		PRIMARY KEY(kind, identity));
	CREATE TABLE audit(
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		time INTEGER NOT NULL,
		action TEXT NOT NULL,
		kind TEXT NOT NULL,
		identity TEXT NOT NULL,
		remote TEXT NOT NULL,
		result TEXT NOT NULL,
		detail TEXT NOT NULL DEFAULT '');
	CREATE INDEX audit_time ON audit(time);
	CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
	CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;`,
}

// OpenStore opens (creating it with mode 0600 if needed) the store at path
// and applies pending migrations.
func OpenStore(path string, opt *StoreOptions) (*Store, error) {
	if opt == nil {
		opt = &StoreOptions{}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dta: open store: %w", err)
	}
	f.Close()
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("dta: store %s is accessible by group or others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	sync := opt.Synchronous
	switch sync {
	case "":
		sync = "FULL"
	case "FULL", "NORMAL":
	default:
		return nil, fmt.Errorf("dta: synchronous must be FULL or NORMAL, not %q", sync)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(15000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("dta: open store: %w", err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	s := &Store{db: db, path: path, now: opt.Now, rand: opt.Rand}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadMeta(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) migrate() error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("dta: store %s: %w", s.path, err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`CREATE TABLE IF NOT EXISTS migrations(version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("dta: store %s: %w", s.path, err)
	}
	var have int
	if err := tx.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM migrations`).Scan(&have); err != nil {
		return fmt.Errorf("dta: store %s: %w", s.path, err)
	}
	if have > len(migrations) {
		return fmt.Errorf("dta: store %s has schema version %d, newer than this program (%d)", s.path, have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		if _, err := tx.Exec(migrations[v-1]); err != nil {
			return fmt.Errorf("dta: store %s: migration %d: %w", s.path, v, err)
		}
		if _, err := tx.Exec(`INSERT INTO migrations(version, applied_at) VALUES(?, ?)`, v, s.now().UnixNano()); err != nil {
			return fmt.Errorf("dta: store %s: %w", s.path, err)
		}
	}
	return tx.Commit()
}

func (s *Store) loadMeta() error {
	var fp, pub string
	err := s.db.QueryRow(`SELECT (SELECT value FROM meta WHERE key='fingerprint'), (SELECT value FROM meta WHERE key='seal_public')`).Scan(&nullStr{&fp}, &nullStr{&pub})
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
// it refuses another share (ErrWrongMaster). It returns the sealing private
// key, which the service uses to open secrets.
func (s *Store) Bind(m *pairing.MasterShare) (*ecdh.PrivateKey, error) {
	priv, err := sealKey(m)
	if err != nil {
		return nil, err
	}
	fp := m.Fingerprint()
	if s.pub != nil {
		if s.fp != fp || !s.pub.Equal(priv.PublicKey()) {
			return nil, fmt.Errorf("%w: store %s belongs to D-TA %s, the share is D-TA %s", ErrWrongMaster, s.path, s.fp, fp)
		}
		return priv, nil
	}
	tx, err := s.db.Begin()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO meta(key, value) VALUES('fingerprint', ?), ('seal_public', ?)`, fp.String(), hex.EncodeToString(priv.PublicKey().Bytes())); err != nil {
		return nil, fmt.Errorf("dta: store %s: bind: %w", s.path, err)
	}
	if err := insertAudit(tx, s.now(), "init", "", "", "local", "ok", "D-TA "+fp.String()); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
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

func insertAudit(tx *sql.Tx, t time.Time, action, kind, identity, remote, result, detail string) error {
	_, err := tx.Exec(`INSERT INTO audit(time, action, kind, identity, remote, result, detail) VALUES(?, ?, ?, ?, ?, ?, ?)`,
		t.UnixNano(), action, kind, identity, remote, result, detail)
	if err != nil {
		return fmt.Errorf("dta: audit: %w", err)
	}
	return nil
}

// Audit appends one entry to the audit log in its own transaction.
func (s *Store) Audit(action string, kind Kind, identity, remote, result, detail string) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := insertAudit(tx, s.now(), action, string(kind), identity, remote, result, detail); err != nil {
		return err
	}
	return tx.Commit()
}

// IntegrityCheck runs PRAGMA integrity_check (thorough, O(size)).
func (s *Store) IntegrityCheck() error { return s.check("integrity_check") }

// QuickCheck runs PRAGMA quick_check (what `ta serve` runs at start).
func (s *Store) QuickCheck() error { return s.check("quick_check") }

func (s *Store) check(pragma string) error {
	var r string
	if err := s.db.QueryRow(`PRAGMA ` + pragma).Scan(&r); err != nil {
		return err
	}
	if r != "ok" {
		return fmt.Errorf("dta: store %s: %s: %s", s.path, pragma, r)
	}
	return nil
}
