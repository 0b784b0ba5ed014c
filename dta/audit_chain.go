package dta

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The audit log is tamper-evident without making writers queue on one row.
// Rows are appended freely (each gets a sequence number); a sealer, run by
// every `ta serve` replica on a timer and by the operator commands, takes
// the rows after the last head up to a watermark (every row at or below it
// is committed, see engine.watermark), computes the Merkle root of their
// canonical encodings and appends one head:
//
//	hash_n = SHA-256("MTLS1-DTA-AUDIT-HEAD" ‖ hash_{n-1} ‖ n ‖ last_seq ‖ count ‖ root ‖ time)
//
// Heads are numbered 1, 2, … under a primary key, so two replicas sealing
// at once cannot fork the chain: one insert wins, the other is refused and
// retries from the new head. VerifyAudit recomputes every root and hash,
// and replays the chained rows against the identities and codes tables, so
// a row removed or edited, or a silent change of a revocation or a code,
// shows up. The service logs and exports the latest head (n, last_seq,
// hash): a copy kept outside the database proves any later rewrite of the
// whole chain.

// AuditHead is one link of the audit chain.
type AuditHead struct {
	N       int64     `json:"n"`
	LastSeq int64     `json:"last_seq"`
	Count   int64     `json:"count"`
	Root    []byte    `json:"root"`
	Hash    []byte    `json:"hash"`
	Time    time.Time `json:"time"`
}

// HashHex returns the head's hash in hex.
func (h AuditHead) HashHex() string { return hex.EncodeToString(h.Hash) }

// maxSealBatch bounds the rows under one head (and the memory a seal or a
// verification holds at once).
const maxSealBatch = 100_000

func auditLeaf(e *AuditEntry) [32]byte {
	var b []byte
	b = append(b, 0) // leaf
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	for _, f := range []string{e.Action, e.Kind, e.Identity, e.Remote, e.Result, e.Detail} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return sha256.Sum256(b)
}

// merkleRoot is the root of a binary Merkle tree over leaves (split at the
// largest power of two below n; inner nodes are SHA-256(1 ‖ left ‖ right)).
func merkleRoot(leaves [][32]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := merkleRoot(leaves[:k]), merkleRoot(leaves[k:])
	var b [65]byte
	b[0] = 1
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}

func headHash(prev []byte, n, lastSeq, count int64, root []byte, t int64) []byte {
	h := sha256.New()
	h.Write([]byte("MTLS1-DTA-AUDIT-HEAD"))
	if prev == nil {
		prev = make([]byte, 32)
	}
	h.Write(prev)
	var b [32]byte
	binary.BigEndian.PutUint64(b[0:], uint64(n))
	binary.BigEndian.PutUint64(b[8:], uint64(lastSeq))
	binary.BigEndian.PutUint64(b[16:], uint64(count))
	binary.BigEndian.PutUint64(b[24:], uint64(t))
	h.Write(b[:24])
	h.Write(root)
	h.Write(b[24:])
	return h.Sum(nil)
}

func scanAudit(rows *sql.Rows) (AuditEntry, error) {
	var e AuditEntry
	var t int64
	err := rows.Scan(&e.Seq, &t, &e.Action, &e.Kind, &e.Identity, &e.Remote, &e.Result, &e.Detail)
	e.Time = time.Unix(0, t).UTC()
	return e, err
}

// AuditHeadNow returns the latest head of the chain (N 0 when none yet).
func (s *Store) AuditHeadNow() (AuditHead, error) {
	var h AuditHead
	var t int64
	err := s.queryRow(`SELECT n, last_seq, count, root, hash, time FROM audit_heads ORDER BY n DESC LIMIT 1`).Scan(&h.N, &h.LastSeq, &h.Count, &h.Root, &h.Hash, &t)
	if errors.Is(err, sql.ErrNoRows) {
		return AuditHead{}, nil
	}
	h.Time = time.Unix(0, t).UTC()
	return h, err
}

// SealAudit chains every committed audit row not yet under a head, in
// batches of at most maxSealBatch rows, and returns the latest head; added
// reports whether this call appended one.
func (s *Store) SealAudit(ctx context.Context) (head AuditHead, added bool, err error) {
	wm, err := s.eng.watermark(ctx, s.db)
	if err != nil {
		return AuditHead{}, false, fmt.Errorf("dta: audit seal: %w", err)
	}
	for tries := 0; tries < 1000; tries++ {
		h, more, err := s.sealOnce(wm)
		if err != nil {
			if s.eng.isConflict(err) {
				continue // another replica sealed first: go on from its head
			}
			return AuditHead{}, added, fmt.Errorf("dta: audit seal: %w", err)
		}
		head = h
		if !more {
			return head, added, nil
		}
		added = true
	}
	return head, added, nil
}

// sealOnce appends at most one head covering rows up to wm; more reports
// that it appended one.
func (s *Store) sealOnce(wm int64) (AuditHead, bool, error) {
	t, err := s.begin()
	if err != nil {
		return AuditHead{}, false, err
	}
	defer t.Rollback()
	var prev AuditHead
	err = t.QueryRow(`SELECT n, last_seq, hash FROM audit_heads ORDER BY n DESC LIMIT 1`).Scan(&prev.N, &prev.LastSeq, &prev.Hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return AuditHead{}, false, err
	}
	if prev.LastSeq >= wm {
		h, err := s.AuditHeadNow()
		return h, false, err
	}
	rows, err := t.Query(`SELECT seq, time, action, kind, identity, remote, result, detail FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`, prev.LastSeq, wm, maxSealBatch)
	if err != nil {
		return AuditHead{}, false, err
	}
	var leaves [][32]byte
	var last int64
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			rows.Close()
			return AuditHead{}, false, err
		}
		leaves = append(leaves, auditLeaf(&e))
		last = e.Seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return AuditHead{}, false, err
	}
	if len(leaves) == 0 {
		return prev, false, nil
	}
	root := merkleRoot(leaves)
	now := s.now().UnixNano()
	h := AuditHead{N: prev.N + 1, LastSeq: last, Count: int64(len(leaves)), Root: root[:], Time: time.Unix(0, now).UTC()}
	h.Hash = headHash(prev.Hash, h.N, h.LastSeq, h.Count, h.Root, now)
	if _, err := t.Exec(`INSERT INTO audit_heads(n, last_seq, count, root, hash, time) VALUES(?, ?, ?, ?, ?, ?)`,
		h.N, h.LastSeq, h.Count, h.Root, h.Hash, now); err != nil {
		return AuditHead{}, false, err
	}
	if err := t.Commit(); err != nil {
		return AuditHead{}, false, err
	}
	return h, true, nil
}

// AuditVerification is what VerifyAudit found.
type AuditVerification struct {
	Head     AuditHead // the latest head
	Heads    int64     // links in the chain
	Sealed   int64     // rows under a head
	Unsealed int64     // rows after the latest head (not yet provable)
	Problems []string  // empty when the chain and the state agree
}

// OK reports whether no problem was found.
func (v *AuditVerification) OK() bool { return len(v.Problems) == 0 }

// maxProblems bounds the problems one verification reports.
const maxProblems = 100

func (v *AuditVerification) problem(format string, a ...any) {
	if len(v.Problems) < maxProblems {
		v.Problems = append(v.Problems, fmt.Sprintf(format, a...))
	} else if len(v.Problems) == maxProblems {
		v.Problems = append(v.Problems, "… more problems not shown")
	}
}

// identState is what the chained rows say about one identity: cur and
// pending are the sealedTag of its current and pending renewal secrets (""
// when the rows do not say, as in logs written before tags were recorded).
type identState struct {
	enrolled, revoked bool
	cur, pending      string
	// noSecret: reinstated, so no renewal secret until the next enrollment.
	noSecret bool
}

// tagInDetail returns the sealedTag recorded in an audit detail, or "".
func tagInDetail(detail string) string {
	i := strings.LastIndex(detail, "sealed ")
	if i < 0 {
		return ""
	}
	t := detail[i:]
	if len(t) < len("sealed ")+32 {
		return ""
	}
	return t[:len("sealed ")+32]
}

// auditReplay derives, from the audit rows alone, the state the identities
// and codes tables must be in.
type auditReplay struct {
	ids         map[[2]string]*identState
	codeCreated map[string]codeState
	codeUsed    map[string]bool
}

// codeState is what the chained code-create row says about a code.
type codeState struct{ kind, identity, tag string }

func codeInDetail(detail string) string {
	rest, ok := strings.CutPrefix(detail, "code ")
	if !ok || len(rest) < 16 {
		return ""
	}
	return rest[:16]
}

func (r *auditReplay) apply(e *AuditEntry) {
	if e.Result != "ok" {
		return
	}
	st := func() *identState {
		k := [2]string{e.Kind, e.Identity}
		v := r.ids[k]
		if v == nil {
			v = &identState{}
			r.ids[k] = v
		}
		return v
	}
	switch e.Action {
	case "code-create":
		if c := codeInDetail(e.Detail); c != "" {
			r.codeCreated[c] = codeState{e.Kind, e.Identity, tagInDetail(e.Detail)}
		}
	case "enroll":
		if c := codeInDetail(e.Detail); c != "" {
			r.codeUsed[c] = true
		}
		v := st()
		v.enrolled, v.cur, v.pending, v.noSecret = true, tagInDetail(e.Detail), "", false
	case "renew":
		st().pending = tagInDetail(e.Detail)
	case "promote":
		v := st()
		v.cur, v.pending = v.pending, ""
	case "revoke":
		st().revoked = true
	case "reinstate":
		// Reinstating leaves the old renewal secret dead: the identity
		// needs a fresh enrollment code.
		v := st()
		v.revoked, v.cur, v.pending, v.noSecret = false, "", "", true
	}
}

// VerifyAudit checks the audit chain: every head links to the one before,
// every batch of rows hashes to its head's root (no row removed, added or
// changed), and the identities and codes tables agree with what the rows
// say (a revocation undone, a code reset or a secret written outside the
// service shows up). pinned, when not nil, is a head kept outside the
// database that must still be in the chain.
func (s *Store) VerifyAudit(ctx context.Context, pinned *AuditHead) (*AuditVerification, error) {
	v := &AuditVerification{}
	var heads []AuditHead
	hrows, err := s.db.QueryContext(ctx, `SELECT n, last_seq, count, root, hash, time FROM audit_heads ORDER BY n`)
	if err != nil {
		return nil, fmt.Errorf("dta: audit verify: %w", err)
	}
	for hrows.Next() {
		var h AuditHead
		var t int64
		if err := hrows.Scan(&h.N, &h.LastSeq, &h.Count, &h.Root, &h.Hash, &t); err != nil {
			hrows.Close()
			return nil, err
		}
		h.Time = time.Unix(0, t).UTC()
		heads = append(heads, h)
	}
	hrows.Close()
	if err := hrows.Err(); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, time, action, kind, identity, remote, result, detail FROM audit ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("dta: audit verify: %w", err)
	}
	defer rows.Close()
	rp := &auditReplay{ids: map[[2]string]*identState{}, codeCreated: map[string]codeState{}, codeUsed: map[string]bool{}}
	var prevHash []byte
	var prevLast int64
	hi := 0
	var leaves [][32]byte
	var pending *AuditEntry
	next := func() (*AuditEntry, error) {
		if pending != nil {
			e := pending
			pending = nil
			return e, nil
		}
		if !rows.Next() {
			return nil, rows.Err()
		}
		e, err := scanAudit(rows)
		return &e, err
	}
	for ; hi < len(heads); hi++ {
		h := heads[hi]
		if h.N != int64(hi)+1 {
			v.problem("audit chain: head %d missing (found head %d in its place)", hi+1, h.N)
		}
		leaves = leaves[:0]
		for {
			e, err := next()
			if err != nil {
				return nil, err
			}
			if e == nil {
				break
			}
			if e.Seq > h.LastSeq {
				pending = e
				break
			}
			rp.apply(e)
			leaves = append(leaves, auditLeaf(e))
		}
		root := merkleRoot(leaves)
		switch {
		case int64(len(leaves)) != h.Count:
			v.problem("audit chain: head %d covers rows %d..%d: %d rows there, the head says %d (rows removed or added)", h.N, prevLast+1, h.LastSeq, len(leaves), h.Count)
		case !bytes.Equal(root[:], h.Root):
			v.problem("audit chain: head %d covers rows %d..%d: they do not hash to its root (a row was changed)", h.N, prevLast+1, h.LastSeq)
		}
		if want := headHash(prevHash, h.N, h.LastSeq, h.Count, h.Root, h.Time.UnixNano()); !bytes.Equal(want, h.Hash) {
			v.problem("audit chain: head %d does not link to head %d (the chain was rewritten)", h.N, h.N-1)
		}
		v.Sealed += int64(len(leaves))
		prevHash, prevLast = h.Hash, h.LastSeq
	}
	for {
		e, err := next()
		if err != nil {
			return nil, err
		}
		if e == nil {
			break
		}
		rp.apply(e)
		v.Unsealed++
	}
	v.Heads = int64(len(heads))
	if len(heads) > 0 {
		v.Head = heads[len(heads)-1]
	}
	if pinned != nil {
		switch {
		case pinned.N < 1 || pinned.N > int64(len(heads)):
			v.problem("audit chain: the pinned head %d is not in the chain (it has %d heads): the log was cut back", pinned.N, len(heads))
		case !bytes.Equal(heads[pinned.N-1].Hash, pinned.Hash):
			v.problem("audit chain: head %d differs from the pinned copy: the chain was rewritten", pinned.N)
		}
	}
	if err := s.verifyState(ctx, rp, v); err != nil {
		return nil, err
	}
	return v, nil
}

// verifyState compares the identities and codes tables with the replay.
func (s *Store) verifyState(ctx context.Context, rp *auditReplay, v *AuditVerification) error {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, identity, sealed, pending_sealed, revoked_at IS NOT NULL FROM identities`)
	if err != nil {
		return err
	}
	seen := map[[2]string]bool{}
	for rows.Next() {
		var kind, id string
		var sealed, pending []byte
		var revoked bool
		if err := rows.Scan(&kind, &id, &sealed, &pending, &revoked); err != nil {
			rows.Close()
			return err
		}
		k := [2]string{kind, id}
		seen[k] = true
		st := rp.ids[k]
		if st == nil {
			v.problem("identities: %s %s is not in the audit log (written outside the service)", kind, quoteID(id))
			continue
		}
		hasSecret := sealed != nil
		if hasSecret && !st.enrolled {
			v.problem("identities: %s %s has a renewal secret but the audit log has no enrollment", kind, quoteID(id))
		}
		if (hasSecret || pending != nil) && st.noSecret {
			v.problem("identities: %s %s has a renewal secret although it was reinstated without a new enrollment (restored outside the service)", kind, quoteID(id))
		}
		if hasSecret && st.cur != "" && sealedTag(sealed) != st.cur {
			v.problem("identities: %s %s: its renewal secret is not the one the audit log issued (replaced outside the service)", kind, quoteID(id))
		}
		if pending != nil && st.cur != "" && sealedTag(pending) != st.pending {
			v.problem("identities: %s %s: its pending renewal secret is not the one the audit log issued (written outside the service)", kind, quoteID(id))
		}
		if revoked != st.revoked {
			if st.revoked {
				v.problem("identities: %s %s is revoked in the audit log but not in the table (revocation undone outside the service)", kind, quoteID(id))
			} else {
				v.problem("identities: %s %s is revoked in the table but not in the audit log", kind, quoteID(id))
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for k, st := range rp.ids {
		if !seen[k] && (st.revoked || st.enrolled) {
			v.problem("identities: %s %s is missing from the table (deleted outside the service)", k[0], quoteID(k[1]))
		}
	}
	rows, err = s.db.QueryContext(ctx, `SELECT id, kind, identity, sealed, used_at IS NOT NULL FROM codes`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, kind, identity string
		var sealed []byte
		var used bool
		if err := rows.Scan(&id, &kind, &identity, &sealed, &used); err != nil {
			return err
		}
		cs, ok := rp.codeCreated[id]
		switch {
		case !ok:
			v.problem("codes: code %s is not in the audit log (created outside the service)", id)
		case cs.kind != kind || cs.identity != identity:
			v.problem("codes: code %s was created for %s %s, the table now says %s %s (changed outside the service)", id, cs.kind, quoteID(cs.identity), kind, quoteID(identity))
		case cs.tag != "" && sealedTag(sealed) != cs.tag:
			v.problem("codes: code %s: its secret is not the one the audit log issued (replaced outside the service)", id)
		}
		if used != rp.codeUsed[id] {
			if used {
				v.problem("codes: code %s is marked used but the audit log has no enrollment with it", id)
			} else {
				v.problem("codes: code %s was used (audit log) but is marked unused (reset outside the service)", id)
			}
		}
	}
	return rows.Err()
}

func quoteID(id string) string { return fmt.Sprintf("%+q", id) }
