package dta

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/milagro-go/milagro/dta/dtawire"
)

// MaxCodeTTL bounds the lifetime of an enrollment code.
const MaxCodeTTL = 30 * 24 * time.Hour

func codeAAD(id dtawire.CodeID) string { return "code:" + id.String() }
func renewAAD(kind dtawire.Kind, identity string) string {
	return "renew:" + string(kind) + ":" + identity
}

// CreateCode creates a one-time enrollment code for (kind, identity),
// valid for ttl, and audits it. It needs only the store (the sealing
// public key is in meta), so an operator can run it while the service runs.
func (s *Store) CreateCode(kind dtawire.Kind, identity string, ttl time.Duration, operator string) (*dtawire.EnrollCode, error) {
	if s.pub == nil {
		return nil, ErrNotBound
	}
	if _, err := dtawire.ParseKind(string(kind)); err != nil {
		return nil, err
	}
	if err := dtawire.CheckIdentity(kind, identity); err != nil {
		return nil, err
	}
	if ttl <= 0 || ttl > MaxCodeTTL {
		return nil, fmt.Errorf("dta: code lifetime %v outside (0, %v]", ttl, MaxCodeTTL)
	}
	c := &dtawire.EnrollCode{DTA: s.fp}
	if _, err := io.ReadFull(s.rand, c.ID[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(s.rand, c.Secret[:]); err != nil {
		return nil, err
	}
	sealed, err := seal(s.rand, s.pub, c.Secret[:], codeAAD(c.ID))
	if err != nil {
		return nil, err
	}
	now := s.now()
	tx, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var revoked sql.NullInt64
	err = tx.QueryRow(`SELECT revoked_at FROM identities WHERE kind=? AND identity=?`, kind, identity).Scan(&revoked)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if revoked.Valid {
		return nil, fmt.Errorf("%w: %s %q (reinstate it first)", ErrRevoked, kind, identity)
	}
	if _, err := tx.Exec(`INSERT INTO codes(id, sealed, kind, identity, created_at, expires_at) VALUES(?, ?, ?, ?, ?, ?)`,
		c.ID.String(), sealed, kind, identity, now.UnixNano(), now.Add(ttl).UnixNano()); err != nil {
		return nil, fmt.Errorf("dta: create code: %w", err)
	}
	if err := insertAudit(tx, now, "code-create", string(kind), identity, operator, "ok",
		"code "+c.ID.String()+" expires "+now.Add(ttl).UTC().Format(time.RFC3339)+" "+sealedTag(sealed)); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("dta: create code: %w", err)
	}
	return c, nil
}

// Revoke disables an identity's renewal credential and its unused codes:
// from now on it gets no permits, shares or renewals.
func (s *Store) Revoke(kind dtawire.Kind, identity, reason, operator string) error {
	return s.setRevoked(kind, identity, true, reason, operator)
}

// Reinstate undoes Revoke, but not for the old renewal secret: the
// identity needs a fresh enrollment code (CreateCode) to get a new one.
func (s *Store) Reinstate(kind dtawire.Kind, identity, operator string) error {
	return s.setRevoked(kind, identity, false, "", operator)
}

func (s *Store) setRevoked(kind dtawire.Kind, identity string, revoke bool, reason, operator string) error {
	if _, err := dtawire.ParseKind(string(kind)); err != nil {
		return err
	}
	if strings.ContainsFunc(reason, func(r rune) bool { return r < 0x20 || r == 0x7f }) || len(reason) > 1024 {
		return errors.New("dta: the reason must be one line of at most 1024 bytes")
	}
	now := s.now()
	tx, err := s.begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var res sql.Result
	action := "reinstate"
	if revoke {
		action = "revoke"
		// An identity with codes but not enrolled yet gets a row, so that
		// its codes are refused too.
		var n int
		if err := tx.QueryRow(`SELECT (SELECT COUNT(*) FROM identities WHERE kind=? AND identity=?) + (SELECT COUNT(*) FROM codes WHERE kind=? AND identity=?)`,
			kind, identity, kind, identity).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: %s %q", ErrNotFound, kind, identity)
		}
		res, err = tx.Exec(`INSERT INTO identities(kind, identity, revoked_at, reason) VALUES(?, ?, ?, ?)
			ON CONFLICT(kind, identity) DO UPDATE SET revoked_at=excluded.revoked_at, reason=excluded.reason`,
			kind, identity, now.UnixNano(), reason)
	} else {
		// The old renewal secret stays dead (it may be why the identity
		// was revoked): the identity comes back with a fresh code.
		res, err = tx.Exec(`UPDATE identities SET revoked_at=NULL, reason='', sealed=NULL, key_id=NULL, pending_sealed=NULL, pending_key_id=NULL
			WHERE kind=? AND identity=? AND revoked_at IS NOT NULL`, kind, identity)
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: %s %q is not revoked", ErrNotFound, kind, identity)
	}
	if err := insertAudit(tx, now, action, string(kind), identity, operator, "ok", reason); err != nil {
		return err
	}
	return tx.Commit()
}

// IdentityInfo describes an enrolled (or revoked) identity.
type IdentityInfo struct {
	Kind       dtawire.Kind `json:"kind"`
	Identity   string       `json:"identity"`
	EnrolledAt *time.Time   `json:"enrolled_at,omitempty"`
	RevokedAt  *time.Time   `json:"revoked_at,omitempty"`
	Reason     string       `json:"reason,omitempty"`
}

// CodeInfo describes an enrollment code (never its secret).
type CodeInfo struct {
	ID        string       `json:"id"`
	Kind      dtawire.Kind `json:"kind"`
	Identity  string       `json:"identity"`
	CreatedAt time.Time    `json:"created_at"`
	ExpiresAt time.Time    `json:"expires_at"`
	UsedAt    *time.Time   `json:"used_at,omitempty"`
}

func tptr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.Unix(0, v.Int64).UTC()
	return &t
}

// List returns the identities and the codes in the store.
func (s *Store) List() ([]IdentityInfo, []CodeInfo, error) {
	var ids []IdentityInfo
	rows, err := s.query(`SELECT kind, identity, enrolled_at, revoked_at, reason FROM identities ORDER BY kind, identity`)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var i IdentityInfo
		var en, rev sql.NullInt64
		if err := rows.Scan(&i.Kind, &i.Identity, &en, &rev, &i.Reason); err != nil {
			rows.Close()
			return nil, nil, err
		}
		i.EnrolledAt, i.RevokedAt = tptr(en), tptr(rev)
		ids = append(ids, i)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	var codes []CodeInfo
	rows, err = s.query(`SELECT id, kind, identity, created_at, expires_at, used_at FROM codes ORDER BY created_at`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var c CodeInfo
		var cr, ex int64
		var used sql.NullInt64
		if err := rows.Scan(&c.ID, &c.Kind, &c.Identity, &cr, &ex, &used); err != nil {
			return nil, nil, err
		}
		c.CreatedAt, c.ExpiresAt, c.UsedAt = time.Unix(0, cr).UTC(), time.Unix(0, ex).UTC(), tptr(used)
		codes = append(codes, c)
	}
	return ids, codes, rows.Err()
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Action   string    `json:"action"`
	Kind     string    `json:"kind,omitempty"`
	Identity string    `json:"identity,omitempty"`
	Remote   string    `json:"remote"`
	Result   string    `json:"result"`
	Detail   string    `json:"detail,omitempty"`
}

// AuditLog returns the audit entries at or after since, oldest first.
func (s *Store) AuditLog(since time.Time) ([]AuditEntry, error) {
	rows, err := s.query(`SELECT seq, time, action, kind, identity, remote, result, detail FROM audit WHERE time >= ? ORDER BY seq`, since.UnixNano())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var t int64
		if err := rows.Scan(&e.Seq, &t, &e.Action, &e.Kind, &e.Identity, &e.Remote, &e.Result, &e.Detail); err != nil {
			return nil, err
		}
		e.Time = time.Unix(0, t).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// ---- what the service needs ----

// sqlRenewalRow reads what a request with a renewal credential needs:
// the secrets and the revocation.
const sqlRenewalRow = `SELECT sealed, pending_sealed, pending_key_id, revoked_at FROM identities WHERE kind=? AND identity=?`

// renewalSecret picks and opens the secret of an identities row.
func (s *Store) renewalSecret(priv *ecdh.PrivateKey, kind dtawire.Kind, identity, KeyID string, sealed, pending []byte, pendingID sql.NullString) ([]byte, error) {
	if pending != nil && pendingID.Valid && KeyID != "" && pendingID.String == KeyID {
		sealed = pending
	}
	if sealed == nil {
		return nil, ErrNotFound // revoked before it ever enrolled
	}
	return s.unsealCached(priv, sealed, renewAAD(kind, identity))
}

// unsealCached opens a sealed secret, remembering the result (bounded) so
// that a client's daily handshakes do not each cost an X25519 operation.
// The key is the hash of the sealed value and its AAD: a changed row is a
// new key, so the cache never returns a stale secret.
func (s *Store) unsealCached(priv *ecdh.PrivateKey, sealed []byte, aad string) ([]byte, error) {
	h := sha256.New()
	h.Write(sealed)
	h.Write([]byte(aad))
	var k [32]byte
	h.Sum(k[:0])
	s.cacheMu.Lock()
	if v, ok := s.cache[k]; ok {
		s.cacheMu.Unlock()
		return bytes.Clone(v), nil
	}
	s.cacheMu.Unlock()
	v, err := unseal(priv, sealed, aad)
	if err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	if s.cache == nil {
		s.cache = make(map[[32]byte][]byte)
	}
	for ck, cv := range s.cache {
		if len(s.cache) < maxSecretCache {
			break
		}
		clear(cv)
		delete(s.cache, ck)
	}
	s.cache[k] = bytes.Clone(v)
	s.cacheMu.Unlock()
	return v, nil
}

// maxSecretCache bounds the unsealed secrets kept in memory.
const maxSecretCache = 100_000

type codeRow struct {
	kind     dtawire.Kind
	identity string
}

// redeemCode marks the code used, records the identity's new renewal secret
// and the audit entry, all in one transaction; issued is what the audit
// entry says was issued. It fails with ErrCodeUsed, ErrCodeExpired or
// ErrRevoked (each audited in a transaction of its own).
func (s *Store) redeemCode(id dtawire.CodeID, renewSealed func(kind dtawire.Kind, identity string) ([]byte, string, error), remote, issued string) (codeRow, error) {
	now := s.now()
	var row codeRow
	fail := func(err error, result string) (codeRow, error) {
		s.Audit("enroll", row.kind, row.identity, remote, result, "code "+id.String())
		return row, err
	}
	tx, err := s.begin()
	if err != nil {
		return row, err
	}
	defer tx.Rollback()
	var exp int64
	var used sql.NullInt64
	err = tx.QueryRow(`SELECT kind, identity, expires_at, used_at FROM codes WHERE id=?`, id.String()).Scan(&row.kind, &row.identity, &exp, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return row, ErrNotFound
	}
	if err != nil {
		return row, err
	}
	// The UPDATE is the single point of truth: of two concurrent uses,
	// exactly one changes the row.
	res, err := tx.Exec(`UPDATE codes SET used_at=? WHERE id=? AND used_at IS NULL AND expires_at > ?`, now.UnixNano(), id.String(), now.UnixNano())
	if err != nil {
		return row, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		tx.Rollback()
		if used.Valid || err != nil {
			return fail(ErrCodeUsed, "code_used")
		}
		if exp <= now.UnixNano() {
			return fail(ErrCodeExpired, "code_expired")
		}
		return fail(ErrCodeUsed, "code_used")
	}
	var revoked sql.NullInt64
	err = tx.QueryRow(`SELECT revoked_at FROM identities WHERE kind=? AND identity=?`, row.kind, row.identity).Scan(&revoked)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return row, err
	}
	if revoked.Valid {
		tx.Rollback()
		return fail(ErrRevoked, "revoked")
	}
	sealed, kid, err := renewSealed(row.kind, row.identity)
	if err != nil {
		return row, err
	}
	if _, err := tx.Exec(`INSERT INTO identities(kind, identity, sealed, key_id, enrolled_at) VALUES(?, ?, ?, ?, ?)
		ON CONFLICT(kind, identity) DO UPDATE SET sealed=excluded.sealed, key_id=excluded.key_id,
		pending_sealed=NULL, pending_key_id=NULL, enrolled_at=excluded.enrolled_at`,
		row.kind, row.identity, sealed, kid, now.UnixNano()); err != nil {
		return row, err
	}
	if err := insertAudit(tx, now, "enroll", string(row.kind), row.identity, remote, "ok", "code "+id.String()+"; issued "+issued+"; renewal secret "+kid+" "+sealedTag(sealed)); err != nil {
		return row, err
	}
	return row, tx.Commit()
}

// authorize checks, in the transaction that records the audit entry, that
// (kind, identity) is not revoked; when KeyID names the pending renewal
// secret (the client used it) it becomes the current one and the old one
// stops working. It commits
// the audit entry only if the identity is in good standing.
func (s *Store) authorize(kind dtawire.Kind, identity, KeyID string, action, remote, detail string) error {
	now := s.now()
	// The common case in one statement (one round trip, its own
	// transaction): an identity in good standing whose client did not
	// name its pending secret gets its audit row. Otherwise no row is
	// written and the transaction below decides, promotes and audits.
	res, err := s.execHot(s.eng.auditIfAuthorized(), now.UnixNano(), action, remote, detail, kind, identity, KeyID)
	if err != nil {
		return fmt.Errorf("dta: audit: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return nil
	}
	tx, err := s.begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var revoked sql.NullInt64
	var pendingID sql.NullString
	err = tx.QueryRow(`SELECT revoked_at, pending_key_id FROM identities WHERE kind=? AND identity=?`, kind, identity).Scan(&revoked, &pendingID)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if revoked.Valid {
		tx.Rollback()
		s.Audit(action, kind, identity, remote, "revoked", detail)
		return ErrRevoked
	}
	// Only a client naming the pending secret can promote it (it received
	// that secret from a committed /v1/renew before it could use it), so
	// the UPDATE runs only then: one round trip less on every other request.
	if KeyID != "" && pendingID.Valid && pendingID.String == KeyID {
		res, err := tx.Exec(`UPDATE identities SET sealed=pending_sealed, key_id=pending_key_id, pending_sealed=NULL, pending_key_id=NULL
			WHERE kind=? AND identity=? AND pending_sealed IS NOT NULL AND pending_key_id=?`, kind, identity, KeyID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if err := insertAudit(tx, now, "promote", string(kind), identity, remote, "ok", "renewal secret "+KeyID+" in use"); err != nil {
				return err
			}
		}
	}
	if err := insertAudit(tx, now, action, string(kind), identity, remote, "ok", detail); err != nil {
		return err
	}
	return tx.Commit()
}

// sqlAuditIfAuthorized is authorize's one-statement path (see
// engine.auditIfAuthorized).
const sqlAuditIfAuthorized = `INSERT INTO audit(time, action, kind, identity, remote, result, detail)
	SELECT ?, ?, kind, identity, ?, 'ok', ? FROM identities
	WHERE kind=? AND identity=? AND revoked_at IS NULL AND (pending_key_id IS NULL OR pending_key_id <> ?)`

// setPending records a new renewal secret that replaces the current one
// once it has been used.
func (s *Store) setPending(kind dtawire.Kind, identity string, sealed []byte, kid, remote string) error {
	now := s.now()
	tx, err := s.begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.Exec(`UPDATE identities SET pending_sealed=?, pending_key_id=? WHERE kind=? AND identity=? AND revoked_at IS NULL`, sealed, kid, kind, identity)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		tx.Rollback()
		s.Audit("renew", kind, identity, remote, "revoked", "")
		return ErrRevoked
	}
	if err := insertAudit(tx, now, "renew", string(kind), identity, remote, "ok", "new renewal secret "+kid+" "+sealedTag(sealed)); err != nil {
		return err
	}
	return tx.Commit()
}

// credential returns, in one query, the current secret of a credential
// that completed a handshake (as the handshake's PSK lookup would) and
// whether it is still good (as credentialValid; valid is nil when it is).
// err reports a credential gone or a store failure.
func (s *Store) credential(priv *ecdh.PrivateKey, id dtawire.PSKIdentity, KeyID string, now time.Time) (psk []byte, valid, err error) {
	if id.Enroll {
		var sealed []byte
		var exp int64
		var used sql.NullInt64
		err := s.queryRowHot(`SELECT sealed, expires_at, used_at FROM codes WHERE id=?`, id.Code.String()).Scan(&sealed, &exp, &used)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil, ErrNotFound
		}
		if err != nil {
			return nil, nil, err
		}
		switch {
		case used.Valid:
			valid = ErrCodeUsed
		case exp <= now.UnixNano():
			valid = ErrCodeExpired
		}
		psk, err = s.unsealCached(priv, sealed, codeAAD(id.Code))
		return psk, valid, err
	}
	var sealed, pending []byte
	var pendingID sql.NullString
	var revoked sql.NullInt64
	err = s.queryRowHot(sqlRenewalRow, id.Kind, id.Identity).Scan(&sealed, &pending, &pendingID, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	if revoked.Valid {
		valid = ErrRevoked
	}
	psk, err = s.renewalSecret(priv, id.Kind, id.Identity, KeyID, sealed, pending, pendingID)
	return psk, valid, err
}

// credentialValid reports whether a credential that completed a handshake
// is still good: ErrCodeUsed or ErrCodeExpired for a code, ErrRevoked for a
// revoked identity.
func (s *Store) credentialValid(id dtawire.PSKIdentity, now time.Time) error {
	if id.Enroll {
		var exp int64
		var used sql.NullInt64
		if err := s.queryRow(`SELECT expires_at, used_at FROM codes WHERE id=?`, id.Code.String()).Scan(&exp, &used); err != nil {
			return err
		}
		if used.Valid {
			return ErrCodeUsed
		}
		if exp <= now.UnixNano() {
			return ErrCodeExpired
		}
		return nil
	}
	var revoked sql.NullInt64
	if err := s.queryRow(`SELECT revoked_at FROM identities WHERE kind=? AND identity=?`, id.Kind, id.Identity).Scan(&revoked); err != nil {
		return err
	}
	if revoked.Valid {
		return ErrRevoked
	}
	return nil
}

// codeOwner returns the kind and identity an enrollment code was made for.
func (s *Store) codeOwner(id dtawire.CodeID) (dtawire.Kind, string, error) {
	var kind dtawire.Kind
	var identity string
	err := s.queryRow(`SELECT kind, identity FROM codes WHERE id=?`, id.String()).Scan(&kind, &identity)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	return kind, identity, err
}

// sealedTag names a sealed secret in the audit log without revealing it:
// "sealed <first 16 bytes of SHA-256(sealed) in hex>". VerifyAudit compares
// it with the tables, so a secret written behind the service's back (sealing
// needs only the public key) shows up.
func sealedTag(sealed []byte) string {
	h := sha256.Sum256(sealed)
	return "sealed " + hex.EncodeToString(h[:16])
}
