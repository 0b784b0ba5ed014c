package dta

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// CopyStore copies every table of from (codes, identities, the audit log
// with its sequence numbers and the audit chain's heads) into to, which
// must be a new, empty store; secrets stay sealed as they are. Because the
// rows keep their sequence numbers and the heads are copied as they are,
// the chain verifies on the destination exactly as on the source: run
// VerifyAudit on both. It is how an SQLite D-TA moves to PostgreSQL.
func CopyStore(ctx context.Context, from, to *Store) error {
	if from.pub == nil {
		return fmt.Errorf("dta: copy: %w", ErrNotBound)
	}
	if to.pub != nil {
		return fmt.Errorf("dta: copy: the destination %s already belongs to D-TA %s", to.path, to.fp)
	}
	var n int64
	if err := to.queryRow(`SELECT (SELECT COUNT(*) FROM audit) + (SELECT COUNT(*) FROM codes) + (SELECT COUNT(*) FROM identities) + (SELECT COUNT(*) FROM audit_heads)`).Scan(&n); err != nil {
		return fmt.Errorf("dta: copy: %w", err)
	}
	if n != 0 {
		return fmt.Errorf("dta: copy: the destination %s is not empty", to.path)
	}
	t, err := to.begin()
	if err != nil {
		return err
	}
	defer t.Rollback()
	tables := []struct {
		name, cols string
		n          int
	}{
		{"meta", "key, value", 2},
		{"codes", "id, sealed, kind, identity, created_at, expires_at, used_at", 7},
		{"identities", "kind, identity, sealed, key_id, pending_sealed, pending_key_id, enrolled_at, revoked_at, reason", 9},
		{"audit", "seq, time, action, kind, identity, remote, result, detail", 8},
		{"audit_heads", "n, last_seq, count, root, hash, time", 6},
	}
	for _, tb := range tables {
		rows, err := from.db.QueryContext(ctx, `SELECT `+tb.cols+` FROM `+tb.name)
		if err != nil {
			return fmt.Errorf("dta: copy %s: %w", tb.name, err)
		}
		q := `INSERT INTO ` + tb.name + `(` + tb.cols + `) VALUES(?` + strings.Repeat(", ?", tb.n-1) + `)`
		vals := make([]any, tb.n)
		ptrs := make([]any, tb.n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return fmt.Errorf("dta: copy %s: %w", tb.name, err)
			}
			if _, err := t.Exec(q, vals...); err != nil {
				rows.Close()
				return fmt.Errorf("dta: copy %s: %w", tb.name, err)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("dta: copy %s: %w", tb.name, err)
		}
	}
	if to.eng.name() == "postgres" {
		// Rows were inserted with their own numbers: move the sequence
		// past them.
		if _, err := t.Exec(`SELECT setval(pg_get_serial_sequence('audit', 'seq'), GREATEST((SELECT COALESCE(MAX(seq), 0) FROM audit), 1))`); err != nil {
			return fmt.Errorf("dta: copy: %w", err)
		}
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("dta: copy: %w", err)
	}
	if err := to.loadMeta(); err != nil {
		return err
	}
	if to.pub == nil {
		return errors.New("dta: copy: the destination has no D-TA binding after the copy")
	}
	return nil
}
