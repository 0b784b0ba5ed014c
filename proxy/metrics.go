package proxy

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the proxy's Prometheus metrics, on a private registry (never
// the global one). A nil *Metrics records nothing.
type Metrics struct {
	Registry *prometheus.Registry

	handshakes  *prometheus.CounterVec // suite, result
	hsDuration  prometheus.Histogram
	active      prometheus.Gauge
	connections *prometheus.CounterVec // result
	bytes       *prometheus.CounterVec // direction
	aclDenials  prometheus.Counter
	lockouts    prometheus.Counter
}

// Handshake results (the "result" label of mtls_proxy_handshakes_total).
const (
	resultOK      = "ok"
	resultDenied  = "denied"
	resultTimeout = "timeout"
	resultError   = "error"
	resultBusy    = "busy"
)

// NewMetrics creates the metrics on a new registry, which also carries the
// Go runtime and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtls_proxy_handshakes_total",
			Help: "mtls handshakes by cipher suite and result (ok, denied, timeout, error, busy).",
		}, []string{"suite", "result"}),
		hsDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mtls_proxy_handshake_duration_seconds",
			Help:    "Duration of mtls handshakes, successful or not.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mtls_proxy_active_connections",
			Help: "Connections currently open (handshaking or forwarding).",
		}),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtls_proxy_connections_total",
			Help: "Accepted connections by outcome.",
		}, []string{"result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtls_proxy_bytes_total",
			Help: "Bytes forwarded: direction=upstream is accepted side to target, downstream the reverse.",
		}, []string{"direction"}),
		aclDenials: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mtls_proxy_acl_denials_total",
			Help: "Peers refused by the access control list.",
		}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mtls_proxy_cs_lockouts_total",
			Help: "Milagro CS identities locked out after repeated failed proofs (wrong PIN or key).",
		}),
	}
	reg.MustRegister(m.handshakes, m.hsDuration, m.active, m.connections, m.bytes, m.aclDenials, m.lockouts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) handshake(suite, result string, d time.Duration) {
	if m == nil {
		return
	}
	if suite == "" {
		suite = "unknown"
	}
	m.handshakes.WithLabelValues(suite, result).Inc()
	m.hsDuration.Observe(d.Seconds())
}

func (m *Metrics) connOpen() {
	if m != nil {
		m.active.Inc()
	}
}

func (m *Metrics) connClose(result string) {
	if m != nil {
		m.active.Dec()
		m.connections.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) lockout() {
	if m != nil {
		m.lockouts.Inc()
	}
}

func (m *Metrics) denied() {
	if m != nil {
		m.aclDenials.Inc()
	}
}

func (m *Metrics) bytesFunc() func(up bool, n int) {
	if m == nil {
		return nil
	}
	upC, downC := m.bytes.WithLabelValues("upstream"), m.bytes.WithLabelValues("downstream")
	return func(up bool, n int) {
		if up {
			upC.Add(float64(n))
		} else {
			downC.Add(float64(n))
		}
	}
}

// StatusHandler serves /healthz and /metrics. /healthz answers 200 when a
// TCP connection to target can be opened within DialTimeout (default 1 s),
// else 503; the result is cached for CacheFor (default 1 s) so probes cannot
// turn the proxy into a connection hammer.
type StatusHandler struct {
	Target      string
	Metrics     *Metrics
	DialTimeout time.Duration
	CacheFor    time.Duration
	// Degraded, if set, is asked on every /healthz once the target is
	// reachable: an error answers 503 with its text (the proxy cannot do
	// its job, e.g. a client without a time permit for today); a non-empty
	// warning answers 200 with the warning (still serving, but an operator
	// must act soon, e.g. tomorrow's permit missing an hour before
	// midnight) — so a load balancer keeps a proxy that works.
	Degraded func() (warning string, err error)

	mu      sync.Mutex
	checked time.Time
	err     error

	promOnce sync.Once
	prom     http.Handler
}

func (h *StatusHandler) health(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	cache := h.CacheFor
	if cache == 0 {
		cache = time.Second
	}
	if !h.checked.IsZero() && time.Since(h.checked) < cache {
		return h.err
	}
	timeout := h.DialTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", h.Target)
	if err == nil {
		c.Close()
	}
	h.err, h.checked = err, time.Now()
	return err
}

func (h *StatusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := h.health(context.Background()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("target unreachable\n"))
			return
		}
		if h.Degraded != nil {
			warn, err := h.Degraded()
			if err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(oneLine(err.Error()) + "\n"))
				return
			}
			if warn != "" {
				_, _ = w.Write([]byte(oneLine(warn) + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	case "/metrics":
		if h.Metrics == nil {
			http.NotFound(w, r)
			return
		}
		h.promOnce.Do(func() { h.prom = promhttp.HandlerFor(h.Metrics.Registry, promhttp.HandlerOpts{}) })
		h.prom.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// oneLine keeps a health message on one line of printable text.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
