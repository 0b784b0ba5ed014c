package dta

import (
	"database/sql"
	"errors"

	"github.com/milagro-go/milagro/dta/dtawire"
)

// promotePending makes the pending renewal secret of (kind, identity) the
// current one when KeyID names it (the client just completed a handshake
// with it), and audits the promotion. It reports whether it promoted. The
// other endpoints promote inside authorize; this is for those that write
// nothing else (GET /v1/info).
func (s *Store) promotePending(kind dtawire.Kind, identity, KeyID, remote string) (bool, error) {
	if KeyID == "" {
		return false, nil
	}
	var pending sql.NullString
	err := s.queryRow(`SELECT pending_key_id FROM identities WHERE kind=? AND identity=?`, kind, identity).Scan(&pending)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (!pending.Valid || pending.String != KeyID)) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	tx, err := s.begin()
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	res, err := tx.Exec(`UPDATE identities SET sealed=pending_sealed, key_id=pending_key_id, pending_sealed=NULL, pending_key_id=NULL
		WHERE kind=? AND identity=? AND pending_sealed IS NOT NULL AND pending_key_id=? AND revoked_at IS NULL`, kind, identity, KeyID)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	if err := insertAudit(tx, s.now(), "promote", string(kind), identity, remote, "ok", "renewal secret "+KeyID+" in use"); err != nil {
		return false, err
	}
	return true, tx.Commit()
}
