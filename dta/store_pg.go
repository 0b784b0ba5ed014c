package dta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// pgEngine runs the store on PostgreSQL so that several `ta serve`
// replicas of one D-TA can share it. Transactions run at READ COMMITTED:
// every guarded change is one UPDATE whose WHERE clause is re-checked by
// PostgreSQL after the row lock is granted (a code used, a pending secret
// promoted), so of two replicas exactly one changes the row.
type pgEngine struct{}

// Advisory lock keys (a fixed 64-bit number per purpose, "MTLSDTA" + n).
const (
	pgLockMigrate = 0x4d544c5344544101
	pgLockAudit   = 0x4d544c5344544102
)

var pgMigrations = [schemaVersions]string{
	// 1: initial schema (the same tables as SQLite's).
	`CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
	CREATE TABLE codes(
		id TEXT PRIMARY KEY,
		sealed BYTEA NOT NULL,
		kind TEXT NOT NULL,
		identity TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		used_at BIGINT);
	CREATE TABLE identities(
		kind TEXT NOT NULL,
		identity TEXT NOT NULL,
		sealed BYTEA,
		key_id TEXT,
		pending_sealed BYTEA,
		pending_key_id TEXT,
		enrolled_at BIGINT,
		revoked_at BIGINT,
		reason TEXT NOT NULL DEFAULT '',
		PRIMARY KEY(kind, identity));
	CREATE TABLE audit(
		seq BIGSERIAL PRIMARY KEY,
		time BIGINT NOT NULL,
		action TEXT NOT NULL,
		kind TEXT NOT NULL,
		identity TEXT NOT NULL,
		remote TEXT NOT NULL,
		result TEXT NOT NULL,
		detail TEXT NOT NULL DEFAULT '');
	CREATE INDEX audit_time ON audit(time);
	CREATE FUNCTION mtls_append_only() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
	CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
		FOR EACH ROW EXECUTE FUNCTION mtls_append_only();`,
	// 2: the audit chain (audit_chain.go).
	`CREATE TABLE audit_heads(
		n BIGINT PRIMARY KEY,
		last_seq BIGINT NOT NULL,
		count BIGINT NOT NULL,
		root BYTEA NOT NULL,
		hash BYTEA NOT NULL,
		time BIGINT NOT NULL);
	CREATE TRIGGER audit_heads_append_only BEFORE UPDATE OR DELETE ON audit_heads
		FOR EACH ROW EXECUTE FUNCTION mtls_append_only();`,
}

func openPG(dbURL string, opt *StoreOptions) (*Store, error) {
	name := dbURL
	if u, err := url.Parse(dbURL); err == nil {
		name = u.Redacted()
	}
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, fmt.Errorf("dta: store %s: not a valid PostgreSQL URL", name)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "mtls-dta"
	// A session left idle inside a transaction (its replica's host cut
	// off) would hold the audit lock's shared mode; end it.
	cfg.RuntimeParams["idle_in_transaction_session_timeout"] = "30s"
	if opt.ReadOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	db := stdlib.OpenDB(*cfg)
	n := opt.MaxConns
	if n <= 0 {
		n = 16
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	// A connection that outlived a server restart is found broken on first
	// use and replaced by database/sql; bounding its life also rebalances
	// replicas behind a connection pooler.
	db.SetConnMaxLifetime(30 * time.Minute)
	return &Store{db: db, eng: pgEngine{}, path: name}, nil
}

func (pgEngine) name() string           { return "postgres" }
func (pgEngine) cachesStatements() bool { return true }

// auditIfAuthorized takes the audit lock in shared mode before the row
// draws its sequence number, as beginWrite does for a transaction: the
// INSERT's rows come from a join with the materialized lock CTE, so no
// row (and no nextval) exists before the lock is granted, and the lock is
// held until the statement's implicit transaction commits.
func (pgEngine) auditIfAuthorized() string {
	return `WITH audit_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(` + strconv.FormatInt(pgLockAudit, 10) + `)) ` +
		sqlAuditIfAuthorized + ` AND EXISTS (SELECT 1 FROM audit_lock)`
}
func (pgEngine) migration(v int) string { return pgMigrations[v-1] }

// rebind turns ? placeholders into $1, $2, …; the queries of this package
// have no ? inside string literals.
func (pgEngine) rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (pgEngine) lockMigrations(ctx context.Context, c *sql.Conn) (func(), error) {
	if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(pgLockMigrate)); err != nil {
		return nil, err
	}
	return func() { c.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(pgLockMigrate)) }, nil
}

// beginWrite takes the audit lock in shared mode as the first statement of
// every write transaction: writers never wait for each other on it, and
// because it comes before any row lock, the sealer's brief exclusive hold
// (watermark) cannot take part in a deadlock.
func (pgEngine) beginWrite(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, int64(pgLockAudit))
	return err
}

// watermark holds the audit lock exclusively for one query: once granted,
// every transaction that drew a sequence number has committed or rolled
// back, and later ones draw larger numbers, so every audit row at or below
// the maximum seen is final.
func (pgEngine) watermark(ctx context.Context, db *sql.DB) (int64, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// Writers that arrive while the sealer waits queue behind it: bound
	// that wait, so a transaction stuck in another replica (its host cut
	// off) delays the others by 2 s at most, and the sealer tries again at
	// its next tick.
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgLockAudit)); err != nil {
		return 0, err
	}
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit`).Scan(&n); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// check: PostgreSQL verifies its own pages (data checksums, WAL); here we
// only check that the database answers and holds our schema.
func (pgEngine) check(ctx context.Context, db *sql.DB, thorough bool) error {
	var n int64
	return db.QueryRowContext(ctx, `SELECT COUNT(*) FROM meta`).Scan(&n)
}

func (pgEngine) isConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
