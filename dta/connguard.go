package dta

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
)

// MaxConnAge bounds how long one kept-alive connection carries requests: a
// request on an older connection is refused with "Connection: close" and
// the client reconnects (a full handshake against the current secret).
const MaxConnAge = 5 * time.Minute

// connRec is what the D-TA remembers about one accepted connection: when
// its handshake began and a hash of the PSK it authenticated with, so that
// every request on it can be checked against the credential's current
// secret (re-enrolling, rotating or revoking ends a kept-alive connection
// at its next request, not when it closes).
type connRec struct {
	born time.Time

	mu     sync.Mutex
	pskSum [32]byte
	pskSet bool
	// The handshake's read of the credential (its standing, and when),
	// which the connection's first request may use: see takeFresh.
	fresh     bool
	checkedAt time.Time
	standing  error
}

// freshCheck is how long the handshake's read of a credential stands in
// for the first request's re-check (recheck): about the time a request
// takes to be served under load, so a change committed meanwhile is
// missed for no longer than it would be by a request already past its
// re-check. Past it, or for any later request on the connection, the
// store is read again.
const freshCheck = 100 * time.Millisecond

// setCredential records the secret the handshake found for the client's
// PSK identity and the credential's standing (nil: good) read with it at
// time now.
func (r *connRec) setCredential(psk []byte, standing error, now time.Time) {
	if r == nil || psk == nil {
		return
	}
	sum := sha256.Sum256(psk)
	r.mu.Lock()
	r.pskSum, r.pskSet = sum, true
	r.fresh, r.checkedAt, r.standing = true, now, standing
	r.mu.Unlock()
}

// takeFresh returns, for the first request on the connection and within
// freshCheck of the handshake's read, the credential's standing as the
// handshake read it; ok is false otherwise (the caller reads the store).
func (r *connRec) takeFresh(now time.Time) (standing error, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.fresh || !r.pskSet {
		return nil, false
	}
	r.fresh = false
	if d := now.Sub(r.checkedAt); d < 0 || d >= freshCheck {
		return nil, false
	}
	return r.standing, true
}

// samePSK reports, in constant time, whether psk is the one the connection
// authenticated with.
func (r *connRec) samePSK(psk []byte) bool {
	sum := sha256.Sum256(psk)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pskSet && subtle.ConstantTimeCompare(sum[:], r.pskSum[:]) == 1
}

// dtaConn is a connection whose handshake has completed, with its record.
type dtaConn struct {
	*mtls.Conn
	rec *connRec
}

type connRecKey struct{}

// credCheck is the standing of a request's credential as recheck read it
// (nil: still good), so that admitCredential need not read it again.
type credCheck struct{ valid error }

type credCheckKey struct{}

// connContext stores the *mtls.Conn (for mtls.ConnFromContext) and the
// connection's record in every request's context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if dc, ok := c.(*dtaConn); ok {
		ctx = mtls.ConnContext(ctx, dc.Conn)
		return context.WithValue(ctx, connRecKey{}, dc.rec)
	}
	return mtls.ConnContext(ctx, c)
}

// connTLS is the TLS configuration of one accepted connection: no session
// tickets (so no resumption: every connection is a full handshake against
// the credential's current secret) and a PSK lookup that records which
// secret the connection used.
func (s *Server) connTLS(rec *connRec) *mtls.Config {
	c := s.baseTLS()
	c.GetConfigForClient = func(hi *mtls.ClientHelloInfo) (*mtls.Config, error) {
		pc := s.baseTLS()
		sni := hi.ServerName
		pc.GetServerPSK = func(identity string) ([]byte, error) {
			psk, standing, err := s.credential(identity, sni)
			rec.setCredential(psk, standing, s.now())
			return psk, err
		}
		return pc, nil
	}
	c.GetServerPSK = func(identity string) ([]byte, error) {
		psk, standing, err := s.credential(identity, "")
		rec.setCredential(psk, standing, s.now())
		return psk, err
	}
	return c
}

// recheck wraps the API: before each request it checks that the
// connection is younger than MaxConnAge and that the secret it
// authenticated with is still the credential's current one. A request
// that fails either is refused and the connection closed.
func (s *Server) recheck(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, _ := r.Context().Value(connRecKey{}).(*connRec)
		if rec == nil {
			// Not a connection made by Serve (Handler used directly).
			next.ServeHTTP(w, r)
			return
		}
		if s.now().Sub(rec.born) >= MaxConnAge {
			w.Header().Set("Connection", "close")
			s.writeError(w, r, http.StatusUnauthorized, dtawire.CodeBadRequest, "connection older than 5 minutes: reconnect")
			return
		}
		c, ok := mtls.ConnFromContext(r.Context())
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		// The first request right after the handshake uses the
		// handshake's read of the credential (a moment old): its secret
		// is the one the connection authenticated with. Every later
		// request reads the store again. Either way the endpoints decide
		// issuance in the store itself (authorize, redeemCode), so a
		// revocation committed meanwhile is still refused.
		valid, fresh := rec.takeFresh(s.now())
		if !fresh {
			st := c.ConnectionState()
			var psk []byte
			var err error
			psk, valid, err = s.credential(st.PeerIdentity, st.ServerName)
			if err != nil || !rec.samePSK(psk) {
				clear(psk)
				w.Header().Set("Connection", "close")
				s.writeError(w, r, http.StatusUnauthorized, dtawire.CodeBadRequest,
					"the credential this connection authenticated with is no longer current (re-enrolled, rotated or removed): reconnect")
				return
			}
			clear(psk)
		}
		r = r.WithContext(context.WithValue(r.Context(), credCheckKey{}, credCheck{valid: valid}))
		next.ServeHTTP(w, r)
	})
}
