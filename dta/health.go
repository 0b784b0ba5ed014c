package dta

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// healthCacheFor is how long /healthz reuses its counts: the endpoint is
// unauthenticated, so a request must not cost a scan of the store.
const healthCacheFor = 30 * time.Second

type healthCache struct {
	mu         sync.Mutex
	at         time.Time
	identities int
	codes      int
	err        error
}

// HealthHandler serves /healthz for the status listener: 200 with the
// D-TA's fingerprint and its counts of identities and unused codes
// (computed at most every 30 s), 503 when the store does not answer.
func (s *Server) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		h := &s.health
		h.mu.Lock()
		if now := s.now(); h.at.IsZero() || now.Sub(h.at) >= healthCacheFor || now.Before(h.at) {
			h.identities, h.codes, h.err = s.cfg.Store.Counts(ctx)
			h.at = now
		}
		ids, codes, err := h.identities, h.codes, h.err
		if err != nil {
			h.at = time.Time{} // an error is not kept: the next request looks again
		}
		h.mu.Unlock()
		// The counts may be 30 s old, the database's answer may not: a
		// replica whose PostgreSQL is gone must leave the load balancer at
		// once, and come back as soon as it answers again.
		if err == nil {
			err = s.cfg.Store.Ping(ctx)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]string{"status": "unhealthy", "error": "store: " + err.Error()})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"status": "ok", "fingerprint": s.fp.String(), "identities": ids, "unused_codes": codes})
	})
}
