package dta

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// auditSealer chains the audit log on a timer while the service runs, logs
// every new head and exports it, so that a copy kept outside the database
// (log shipping, a metrics store) proves any later rewrite.
type auditSealer struct {
	s        *Server
	interval time.Duration
	seq      prometheus.Gauge
	n        prometheus.Gauge
	hash     *prometheus.GaugeVec
	errs     prometheus.Counter

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

func (a *auditSealer) init(s *Server, reg prometheus.Registerer) {
	a.s = s
	a.interval = s.cfg.AuditSealInterval
	if a.interval <= 0 {
		a.interval = 2 * time.Second
	}
	a.seq = prometheus.NewGauge(prometheus.GaugeOpts{Name: "mtls_dta_audit_head_seq", Help: "Sequence number of the last audit row under the audit chain's head."})
	a.n = prometheus.NewGauge(prometheus.GaugeOpts{Name: "mtls_dta_audit_head_number", Help: "Number of the audit chain's head."})
	a.hash = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mtls_dta_audit_head_info", Help: "The audit chain's head: its number and hash as labels (value 1)."}, []string{"n", "hash"})
	a.errs = prometheus.NewCounter(prometheus.CounterOpts{Name: "mtls_dta_audit_seal_errors_total", Help: "Failed attempts to chain the audit log (database unreachable)."})
	reg.MustRegister(a.seq, a.n, a.hash, a.errs)
}

func (a *auditSealer) start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan struct{})
	go a.run(ctx)
}

func (a *auditSealer) run(ctx context.Context) {
	defer close(a.done)
	t := time.NewTicker(a.interval)
	defer t.Stop()
	var last int64 = -1
	for {
		a.seal(ctx, &last)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *auditSealer) seal(ctx context.Context, last *int64) {
	h, _, err := a.s.cfg.Store.SealAudit(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.errs.Inc()
			a.s.log.Warn("audit: cannot chain the log", "err", err)
		}
		return
	}
	if h.N == *last {
		return
	}
	*last = h.N
	a.seq.Set(float64(h.LastSeq))
	a.n.Set(float64(h.N))
	a.hash.Reset()
	a.hash.WithLabelValues(itoa(h.N), h.HashHex()).Set(1)
	a.s.log.Info("audit head", "n", h.N, "seq", h.LastSeq, "hash", h.HashHex(), "pin", itoa(h.N)+":"+h.HashHex())
}

// stop ends the timer and chains what is left.
func (a *auditSealer) stop(ctx context.Context) {
	a.mu.Lock()
	cancel, done := a.cancel, a.done
	a.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	last := int64(-1)
	a.seal(ctx, &last)
}

func itoa(n int64) string {
	return strconv.FormatInt(n, 10)
}
