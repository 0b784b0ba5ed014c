package dtaclient

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// PermitSourceConfig configures a PermitSource.
type PermitSourceConfig struct {
	// Renewal holds the D-TAs and credentials (kind client). The source
	// may update its secrets (rotation); OnRenewalChange is then called so
	// the caller can save it.
	Renewal         *Renewal
	OnRenewalChange func(*Renewal)
	Client          *ClientOptions
	Now             func() time.Time // the clock permits switch on; nil: time.Now
	Rand            io.Reader        // jitter; nil: crypto/rand
	Logger          *slog.Logger     // nil: slog.Default()
	Registerer      prometheus.Registerer
	// PermitAheadHours is when the D-TAs start issuing the next day's
	// permit: that many hours before midnight (default
	// DefaultPermitAheadHours; /v1/info reports a D-TA's setting). The
	// source fetches tomorrow's permit only from then on.
	PermitAheadHours int
	// MaxJitter spreads the fetch of the next day's permit over
	// [window start, window start + MaxJitter), at most half the window,
	// so that a fleet does not hit the D-TAs at once (default 2 h). Backoff after a failure starts at
	// MinBackoff (default 30 s) and doubles up to MaxBackoff (default 15 min).
	MaxJitter, MinBackoff, MaxBackoff time.Duration
	// Fetch replaces FetchPermits (tests).
	Fetch func(ctx context.Context, days []uint64) (map[uint64]*pairing.TimePermit, error)
	// After replaces time.After (tests with an injected clock).
	After func(time.Duration) <-chan time.Time
}

// PermitSource keeps a CS client's combined permits for today and tomorrow
// in memory and fetches the next day's from every D-TA in the background
// (Run): well before midnight, with jitter, retrying with exponential
// backoff. It never combines a permit from fewer than all D-TAs; if a D-TA
// fails, it keeps what it has and logs and counts which D-TA failed.
// GetCSPermit plugs into mtls.Config.GetCSPermit.
type PermitSource struct {
	cfg PermitSourceConfig
	log *slog.Logger

	mu       sync.Mutex
	permits  map[uint64]*pairing.TimePermit
	lastErr  error
	failures int
	kick     chan struct{}

	horizon   prometheus.Gauge
	failTotal *prometheus.CounterVec
	okTotal   prometheus.Counter
}

// ErrNoPermit: the source holds no permit for the day asked.
var ErrNoPermit = errors.New("dta: no time permit for this day")

// NewPermitSource makes a source; seed it with Add (e.g. the permits of
// Enroll) and start Run.
func NewPermitSource(cfg PermitSourceConfig) (*PermitSource, error) {
	if cfg.Fetch == nil {
		if cfg.Renewal == nil || cfg.Renewal.Kind != dtawire.KindClient {
			return nil, errors.New("dta: a permit source needs a client renewal file")
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.MaxJitter == 0 {
		cfg.MaxJitter = 2 * time.Hour
	}
	if cfg.PermitAheadHours <= 0 {
		cfg.PermitAheadHours = dtawire.DefaultPermitAheadHours
	}
	if w := cfg.window() / 2; cfg.MaxJitter > w {
		cfg.MaxJitter = w
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 30 * time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 15 * time.Minute
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	p := &PermitSource{cfg: cfg, log: cfg.Logger, permits: map[uint64]*pairing.TimePermit{}, kick: make(chan struct{}, 1)}
	if p.log == nil {
		p.log = slog.Default()
	}
	if cfg.Fetch == nil {
		var mu sync.Mutex
		p.cfg.Fetch = func(ctx context.Context, days []uint64) (map[uint64]*pairing.TimePermit, error) {
			mu.Lock()
			defer mu.Unlock()
			m, changed, err := FetchPermits(ctx, cfg.Client, cfg.Renewal, days)
			if changed && cfg.OnRenewalChange != nil {
				cfg.OnRenewalChange(cfg.Renewal)
			}
			return m, err
		}
	}
	p.horizon = prometheus.NewGauge(prometheus.GaugeOpts{Name: "mtls_permit_horizon_days",
		Help: "Days from today for which a combined time permit is held without a gap (1 = today and tomorrow, 0 = today only, -1 = none)."})
	p.failTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mtls_permit_renewal_failures_total",
		Help: "Failed permit fetches, by D-TA fingerprint (or \"all\" for a fetch that failed as a whole)."}, []string{"dta"})
	p.okTotal = prometheus.NewCounter(prometheus.CounterOpts{Name: "mtls_permit_renewals_total", Help: "Successful permit fetches."})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{p.horizon, p.failTotal, p.okTotal} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	p.horizon.Set(-1)
	return p, nil
}

// Add stores combined permits (e.g. from Enroll or files).
func (p *PermitSource) Add(permits ...*pairing.TimePermit) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tp := range permits {
		if tp.IsShare() {
			return fmt.Errorf("dta: permit for day %d is one D-TA's share, not a combined permit", tp.Day())
		}
		p.permits[tp.Day()] = tp
	}
	p.updateLocked(p.cfg.Now())
	return nil
}

// GetCSPermit returns the combined permit for day (the signature of
// mtls.Config.GetCSPermit).
func (p *PermitSource) GetCSPermit(day uint64) (*pairing.TimePermit, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if tp := p.permits[day]; tp != nil {
		return tp, nil
	}
	if p.lastErr != nil {
		return nil, fmt.Errorf("%w %d (%s); last renewal failed: %v", ErrNoPermit, day, pairing.FormatDay(day), p.lastErr)
	}
	return nil, fmt.Errorf("%w %d (%s)", ErrNoPermit, day, pairing.FormatDay(day))
}

// Horizon returns the number of days after today covered without a gap
// (1: today and tomorrow), or -1 when today's permit is missing.
func (p *PermitSource) Horizon() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.horizonLocked(pairing.Day(p.cfg.Now()))
}

func (p *PermitSource) horizonLocked(today uint64) int {
	h := -1
	for d := today; p.permits[d] != nil; d++ {
		h++
	}
	return h
}

// updateLocked prunes permits older than yesterday and sets the gauge.
func (p *PermitSource) updateLocked(now time.Time) {
	today := pairing.Day(now)
	for d, tp := range p.permits {
		if d+1 < today {
			tp.Zeroize()
			delete(p.permits, d)
		}
	}
	p.horizon.Set(float64(p.horizonLocked(today)))
}

// Health returns nil when today's permit is held and tomorrow's is either
// held or not yet due; an error (degraded) when today's is missing or
// tomorrow's is still missing an hour before midnight.
func (p *PermitSource) Health() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	today := pairing.Day(now)
	why := ""
	switch {
	case p.permits[today] == nil:
		why = "no time permit for today"
	case p.permits[today+1] == nil && nextMidnight(now).Sub(now) <= time.Hour:
		why = "tomorrow's time permit is still missing, less than an hour before midnight"
	default:
		return nil
	}
	if p.lastErr != nil {
		return fmt.Errorf("degraded: %s; last renewal failed: %v", why, p.lastErr)
	}
	return fmt.Errorf("degraded: %s", why)
}

func (c *PermitSourceConfig) window() time.Duration {
	return time.Duration(c.PermitAheadHours) * time.Hour
}

// tomorrowDue reports whether the D-TAs issue tomorrow's permit at now.
func (p *PermitSource) tomorrowDue(now time.Time) bool {
	return !now.Before(nextMidnight(now).Add(-p.cfg.window()))
}

func nextMidnight(now time.Time) time.Time {
	return time.Unix(int64(pairing.Day(now)+1)*86400, 0)
}

// missing returns which of today and tomorrow are not held (tomorrow only
// once the D-TAs issue it).
func (p *PermitSource) missing(now time.Time) []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.updateLocked(now)
	today := pairing.Day(now)
	var out []uint64
	if p.permits[today] == nil {
		out = append(out, today)
	}
	if p.permits[today+1] == nil && p.tomorrowDue(now) {
		out = append(out, today+1)
	}
	return out
}

// Refresh fetches, now, whichever of today's and tomorrow's permits is
// missing.
func (p *PermitSource) Refresh(ctx context.Context) error {
	days := p.missing(p.cfg.Now())
	if len(days) == 0 {
		return nil
	}
	m, err := p.cfg.Fetch(ctx, days)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failures++
		p.lastErr = err
		var me MultiError
		if errors.As(err, &me) {
			for _, fp := range me.Failed() {
				p.failTotal.WithLabelValues(fp).Inc()
			}
		} else {
			p.failTotal.WithLabelValues("all").Inc()
		}
		p.log.Warn("time permit renewal failed; keeping the permits held", "days", dtawire.FormatDays(days), "err", err, "horizon_days", p.horizonLocked(pairing.Day(p.cfg.Now())))
		return err
	}
	for _, d := range days {
		tp := m[d]
		if tp == nil || tp.IsShare() || tp.Day() != d {
			p.failures++
			p.lastErr = fmt.Errorf("dta: renewal returned no combined permit for %s", dtawire.FormatDays([]uint64{d}))
			return p.lastErr
		}
		p.permits[d] = tp
	}
	p.failures, p.lastErr = 0, nil
	p.okTotal.Inc()
	p.updateLocked(p.cfg.Now())
	p.log.Info("time permits renewed", "days", dtawire.FormatDays(days))
	return nil
}

// Kick makes Run check for missing permits now.
func (p *PermitSource) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *PermitSource) jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	var b [8]byte
	if _, err := io.ReadFull(p.cfg.Rand, b[:]); err != nil {
		return max / 2
	}
	return time.Duration(binary.BigEndian.Uint64(b[:]) % uint64(max))
}

// nextWait says how long Run sleeps: after a failure, the backoff (with
// jitter); with everything due held, until the D-TAs start issuing the
// next day's permit (PermitAheadHours before midnight) plus jitter.
func (p *PermitSource) nextWait(now time.Time, failed bool) time.Duration {
	p.mu.Lock()
	n := p.failures
	p.mu.Unlock()
	if failed {
		d := p.cfg.MinBackoff
		for i := 1; i < n && d < p.cfg.MaxBackoff; i++ {
			d *= 2
		}
		d = min(d, p.cfg.MaxBackoff)
		return d/2 + p.jitter(d/2+1)
	}
	due := nextMidnight(now).Add(-p.cfg.window())
	if !now.Before(due) {
		due = due.Add(24 * time.Hour)
	}
	return due.Sub(now) + p.jitter(p.cfg.MaxJitter)
}

// Run keeps the permits current until ctx ends.
func (p *PermitSource) Run(ctx context.Context) {
	for {
		err := p.Refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := p.nextWait(p.cfg.Now(), err != nil)
		select {
		case <-ctx.Done():
			return
		case <-p.cfg.After(wait):
		case <-p.kick:
		}
	}
}

// OpenPermitSource is what a `--renewal FILE` flag needs: it loads the
// renewal file (kind client), makes a source that writes rotated secrets
// back to the file, and fetches today's and tomorrow's permits once. A
// failed first fetch is returned with the source (which is usable: Run
// keeps retrying), so the caller decides whether to start without permits.
// Start Run(ctx) in a goroutine and set mtls.Config.GetCSPermit to
// src.GetCSPermit.
func OpenPermitSource(ctx context.Context, path string, cfg PermitSourceConfig) (*PermitSource, error) {
	r, err := LoadRenewal(path)
	if err != nil {
		return nil, err
	}
	if r.Kind != dtawire.KindClient {
		return nil, fmt.Errorf("dta: renewal file %s is for a %s; time permits are for CS clients", path, r.Kind)
	}
	cfg.Renewal = r
	cfg.OnRenewalChange = saveRenewal(path, cfg.Logger)
	src, err := NewPermitSource(cfg)
	if err != nil {
		return nil, err
	}
	return src, src.Refresh(ctx)
}
