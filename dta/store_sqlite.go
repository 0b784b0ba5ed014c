package dta

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // pure-Go SQLite driver "sqlite"
)

// sqliteEngine is the embedded default: one file, writers serialised by
// SQLite itself (BEGIN IMMEDIATE), so the audit watermark is simply the
// highest sequence number.
type sqliteEngine struct{}

var sqliteMigrations = [schemaVersions]string{
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
	// 2: the audit chain (audit_chain.go).
	`CREATE TABLE audit_heads(
		n INTEGER PRIMARY KEY,
		last_seq INTEGER NOT NULL,
		count INTEGER NOT NULL,
		root BLOB NOT NULL,
		hash BLOB NOT NULL,
		time INTEGER NOT NULL);
	CREATE TRIGGER audit_heads_no_update BEFORE UPDATE ON audit_heads BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only'); END;
	CREATE TRIGGER audit_heads_no_delete BEFORE DELETE ON audit_heads BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only'); END;`,
}

func openSQLite(path string, opt *StoreOptions) (*Store, error) {
	if opt.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("dta: open store: %w", err)
		}
	} else {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("dta: open store: %w", err)
		}
		f.Close()
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("dta: store %s is accessible by group or others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	syncMode := opt.Synchronous
	switch syncMode {
	case "":
		syncMode = "FULL"
	case "FULL", "NORMAL":
	default:
		return nil, fmt.Errorf("dta: synchronous must be FULL or NORMAL, not %q", syncMode)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(15000)")
	if opt.ReadOnly {
		q.Set("mode", "ro")
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+syncMode+")")
		q.Set("_txlock", "immediate")
	}
	q.Add("_pragma", "foreign_keys(1)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("dta: open store: %w", err)
	}
	n := opt.MaxConns
	if n <= 0 {
		n = 8
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	return &Store{db: db, eng: sqliteEngine{}, path: path, wmu: new(sync.Mutex)}, nil
}

func (sqliteEngine) name() string           { return "sqlite" }
func (sqliteEngine) cachesStatements() bool { return false }

// auditIfAuthorized: SQLite runs writers one at a time, so the audit
// watermark needs no lock.
func (sqliteEngine) auditIfAuthorized() string { return sqlAuditIfAuthorized }
func (sqliteEngine) rebind(q string) string    { return q }
func (sqliteEngine) migration(v int) string    { return sqliteMigrations[v-1] }

// lockMigrations: the migration transaction is BEGIN IMMEDIATE, which is
// SQLite's writer lock.
func (sqliteEngine) lockMigrations(context.Context, *sql.Conn) (func(), error) {
	return func() {}, nil
}

func (sqliteEngine) beginWrite(context.Context, *sql.Tx) error { return nil }

func (sqliteEngine) watermark(ctx context.Context, db *sql.DB) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit`).Scan(&n)
	return n, err
}

func (sqliteEngine) check(ctx context.Context, db *sql.DB, thorough bool) error {
	pragma := "quick_check"
	if thorough {
		pragma = "integrity_check"
	}
	var r string
	if err := db.QueryRowContext(ctx, `PRAGMA `+pragma).Scan(&r); err != nil {
		return err
	}
	if r != "ok" {
		return fmt.Errorf("dta: store: %s: %s", pragma, r)
	}
	return nil
}

func (sqliteEngine) isConflict(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
