package dta

import "context"

// Counts returns how many identities and unused codes the store holds.
func (s *Store) Counts(ctx context.Context) (identities, codes int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM identities), (SELECT COUNT(*) FROM codes WHERE used_at IS NULL)`).Scan(&identities, &codes)
	return identities, codes, err
}

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }
