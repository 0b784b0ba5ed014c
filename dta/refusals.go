package dta

import (
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/milagro-go/milagro/dta/dtawire"
)

// Refused but authenticated credentials (a used or expired code, a revoked
// identity) cost the D-TA a database read and, without care, one fsync'd
// audit row per request. They are metered per credential: the first
// refusal of a credential in each refusalInterval is audited at once; the
// following ones are counted and written as one summary row when the
// interval ends; past maxRefusalsPerInterval the credential is answered
// 429 without touching the database until the interval ends.
const (
	refusalInterval        = time.Minute
	maxRefusalsPerInterval = 20
	maxRefusalEntries      = 10000
)

type refusalMeter struct {
	s  *Server
	mu sync.Mutex
	m  map[[32]byte]*refusalEntry
}

type refusalEntry struct {
	start      time.Time
	count      int // refusals in this interval (the first one audited)
	action     string
	kind       dtawire.Kind
	identity   string
	remote     string
	result     string
	detail     string
	suppressed int // refusals not audited yet
}

func newRefusalMeter(s *Server) *refusalMeter {
	return &refusalMeter{s: s, m: make(map[[32]byte]*refusalEntry)}
}

func credKey(id dtawire.PSKIdentity) [32]byte { return sha256.Sum256([]byte(id.String())) }

// limited reports whether credential id has been refused too often in
// the current interval (the caller answers 429 without further work).
func (m *refusalMeter) limited(id dtawire.PSKIdentity) bool {
	now := m.s.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.m[credKey(id)]
	return e != nil && now.Sub(e.start) < refusalInterval && e.count >= maxRefusalsPerInterval
}

// refuse records one refusal and audits it if it is the first of its
// credential in the interval.
func (m *refusalMeter) refuse(id dtawire.PSKIdentity, action string, kind dtawire.Kind, identity, remote, result, detail string) {
	now := m.s.now()
	k := credKey(id)
	var flush []refusalEntry
	m.mu.Lock()
	e := m.m[k]
	if e != nil && (now.Sub(e.start) >= refusalInterval || now.Before(e.start)) {
		if e.suppressed > 0 {
			flush = append(flush, *e)
		}
		delete(m.m, k)
		e = nil
	}
	first := e == nil
	if first {
		if len(m.m) >= maxRefusalEntries {
			flush = append(flush, m.expireLocked(now, true)...)
		}
		e = &refusalEntry{start: now, action: action, kind: kind, identity: identity, remote: remote, result: result, detail: detail}
		m.m[k] = e
	} else {
		e.suppressed++
		e.remote = remote // the latest source, for the summary
	}
	e.count++
	m.mu.Unlock()
	m.write(flush)
	if first {
		if err := m.s.cfg.Store.Audit(action, kind, identity, remote, result, detail); err != nil {
			m.s.log.Error("audit", "err", err)
		}
	}
}

// expireLocked removes the entries whose interval has ended (all of them
// when force and none has) and returns those with refusals to summarise.
func (m *refusalMeter) expireLocked(now time.Time, force bool) []refusalEntry {
	var out []refusalEntry
	for k, e := range m.m {
		if now.Sub(e.start) >= refusalInterval || now.Before(e.start) || force {
			if e.suppressed > 0 {
				out = append(out, *e)
			}
			delete(m.m, k)
		}
	}
	return out
}

// flush writes the summaries of ended intervals (all when final).
func (m *refusalMeter) flush(final bool) {
	m.mu.Lock()
	out := m.expireLocked(m.s.now(), final)
	m.mu.Unlock()
	m.write(out)
}

func (m *refusalMeter) write(es []refusalEntry) {
	for _, e := range es {
		detail := fmt.Sprintf("%d more refusals since %s (last from %s)", e.suppressed, e.start.UTC().Format(time.RFC3339), e.remote)
		if e.detail != "" {
			detail = e.detail + "; " + detail
		}
		if err := m.s.cfg.Store.Audit(e.action, e.kind, e.identity, e.remote, e.result, detail); err != nil {
			m.s.log.Error("audit", "err", err)
		}
	}
}

// admitCredential runs before an endpoint does any work for an
// authenticated request: a credential refused too often is answered 429;
// a used or expired code or a revoked identity is refused (metered and
// audited as above) before any share or permit is computed.
func (s *Server) admitCredential(w http.ResponseWriter, r *http.Request, rc reqCtx, action string) bool {
	if s.refusals.limited(rc.id) {
		s.m.requests.WithLabelValues(endpointLabel(r), "too_many_refusals").Inc()
		w.Header().Set("Retry-After", fmt.Sprint(int(refusalInterval.Seconds())))
		w.Header().Set("Connection", "close")
		s.writeJSON(w, http.StatusTooManyRequests, dtawire.ErrorResponse{Error: dtawire.CodeBadRequest,
			Message: "this credential was refused too often; retry later"})
		return false
	}
	var err error
	if cc, ok := r.Context().Value(credCheckKey{}).(credCheck); ok {
		err = cc.valid // read with the secret by recheck, for this request
	} else {
		err = s.cfg.Store.credentialValid(rc.id, s.now())
	}
	if err == nil || errors.Is(err, sql.ErrNoRows) {
		return true
	}
	code := errorCode(err)
	if code == dtawire.CodeInternal {
		s.internal(w, r, action+": credential check", err)
		return false
	}
	kind, id, detail := rc.id.Kind, rc.id.Identity, ""
	if rc.id.Enroll {
		detail = "code " + rc.id.Code.String()
		if k, i, err := s.cfg.Store.codeOwner(rc.id.Code); err == nil {
			kind, id = k, i
		}
	}
	s.refusals.refuse(rc.id, action, kind, id, rc.remote, code, detail)
	s.quiet.warn(action+": refused credential", "", "credential", dtawire.CutID(rc.id.String()), "result", code, "remote", rc.remote)
	switch code {
	case dtawire.CodeCodeUsed:
		s.writeError(w, r, http.StatusForbidden, dtawire.CodeCodeUsed, "this enrollment code has been used; ask the D-TA's operator for a new one")
	case dtawire.CodeCodeExpired:
		s.writeError(w, r, http.StatusForbidden, dtawire.CodeCodeExpired, "this enrollment code has expired; ask the D-TA's operator for a new one")
	default:
		s.writeError(w, r, http.StatusForbidden, dtawire.CodeRevoked, fmt.Sprintf("%s %q is revoked at D-TA %s", kind, id, s.fp))
	}
	return false
}
