package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/internal/admission"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// Metrics are the proxy's Prometheus metrics, on a private registry (never
// the global one). A nil *Metrics records nothing.
type Metrics struct {
	Registry *prometheus.Registry

	handshakes  *prometheus.CounterVec // suite, result, pq
	hsDuration  prometheus.Histogram
	active      prometheus.Gauge
	connections *prometheus.CounterVec // result
	bytes       *prometheus.CounterVec // direction
	aclDenials  prometheus.Counter
	resumed     *prometheus.CounterVec // suite, pq
	retried     prometheus.Counter     // client: reconnections after a refused resumption-only hello
	lockouts    prometheus.Counter
	hsFailures  *prometheus.CounterVec // reason (failureReasons)
	reloads     *prometheus.CounterVec // result: ok, failed
	reloadTime  *prometheus.GaugeVec   // result: unix time of the last one
	reloadOK    prometheus.Gauge       // 1 if the last reload succeeded
	revoked     prometheus.Counter
	httpRef     *prometheus.CounterVec // reason (httpRefusedReasons)

	mu        sync.Mutex
	reloadErr error // the last reload's error, nil after a success
	reloadAt  time.Time

	guardsOnce sync.Once // watchGuards registers its metrics once
}

// watchGuards exports the state of a server's admission guards: handshakes
// holding a slot, connections held in the tarpit, and failed proofs the
// full lockout table could not record.
func (m *Metrics) watchGuards(g *mtls.Guards, slots *admission.Slots, lockout *mtls.Lockout) {
	if m == nil || g == nil {
		return
	}
	m.guardsOnce.Do(func() {
		m.Registry.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "mtls_proxy_handshake_slots_in_use",
				Help: "Connections in their handshake, each holding one of --max-handshakes slots (shared fairly between sources).",
			}, func() float64 { return float64(slots.Len()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "mtls_proxy_tarpit_connections",
				Help: "Refused connections held open before they are closed (sources over their failure budget or their share of handshake slots).",
			}, func() float64 { return float64(g.Pit.Len()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "mtls_proxy_cs_lockout_unrecorded_failures_total",
				Help: "Failed Milagro CS proofs the lockout could not record because its table was full of locked identities.",
			}, func() float64 { return float64(lockout.Dropped()) }),
		)
	})
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
			Help: "mtls handshakes by cipher suite, result (ok, denied, timeout, error, busy) and pq (true: the session keys include the post-quantum ML-KEM-768 secret; false for classic sessions and failed handshakes).",
		}, []string{"suite", "result", "pq"}),
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
	m.resumed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mtls_proxy_handshakes_resumed_total",
		Help: "Successful mtls handshakes that resumed a session (session ticket, no key exchange), by cipher suite and pq (the session is post-quantum hybrid); also counted in mtls_proxy_handshakes_total.",
	}, []string{"suite", "pq"})
	reg.MustRegister(m.resumed)
	m.retried = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mtls_proxy_resumption_retries_total",
		Help: "Client mode: connections for which the server refused a resumption-only ClientHello (a cached Milagro CS session offered alone), so the proxy reconnected once with a full handshake that succeeded. A steady rise means tickets keep being refused (ticket keys rotated, a restart, the session's identity no longer admitted).",
	})
	reg.MustRegister(m.retried)
	m.hsFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mtls_proxy_handshake_failures_total",
		Help: "Failed handshakes by reason: " + strings.Join(failureReasons, ", ") + ".",
	}, []string{"reason"})
	for _, r := range failureReasons {
		m.hsFailures.WithLabelValues(r)
	}
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mtls_proxy_reloads_total",
		Help: "Configuration reloads (SIGHUP) by result (ok, failed).",
	}, []string{"result"})
	m.reloadTime = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mtls_proxy_last_reload_timestamp_seconds",
		Help: "Unix time of the last reload by result (ok, failed).",
	}, []string{"result"})
	m.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mtls_proxy_last_reload_success",
		Help: "1 if the last reload succeeded (or none was attempted), 0 if it failed and the previous configuration is in use.",
	})
	m.reloadOK.Set(1)
	for _, r := range []string{"ok", "failed"} {
		m.reloads.WithLabelValues(r)
	}
	m.revoked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mtls_proxy_revoked_connections_total",
		Help: "Live connections closed by a reload because the ACL no longer admits their identity.",
	})
	m.httpRef = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mtls_proxy_http_refused_total",
		Help: "HTTP identity mode: requests whose protocol switch was refused, by reason: h2c_upgrade and upgrade (the offer was removed and the request served over HTTP/1.1), h2_preface (HTTP/2 preface without ALPN h2: 400), connect (CONNECT: 405).",
	}, []string{"reason"})
	for _, r := range httpRefusedReasons {
		m.httpRef.WithLabelValues(r)
	}
	reg.MustRegister(m.httpRef)
	reg.MustRegister(m.hsFailures, m.reloads, m.reloadTime, m.reloadOK, m.revoked)
	reg.MustRegister(m.handshakes, m.hsDuration, m.active, m.connections, m.bytes, m.aclDenials, m.lockouts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) handshake(suite, result string, d time.Duration) {
	m.handshakePQ(suite, result, false, d)
}

func (m *Metrics) handshakePQ(suite, result string, pq bool, d time.Duration) {
	if m == nil {
		return
	}
	if suite == "" {
		suite = "unknown"
	}
	m.handshakes.WithLabelValues(suite, result, strconv.FormatBool(pq)).Inc()
	m.hsDuration.Observe(d.Seconds())
}

// handshakeOK records a successful handshake (and whether it resumed).
func (m *Metrics) handshakeOK(cs mtls.ConnectionState, d time.Duration) {
	m.handshakePQ(cs.CipherSuiteName, resultOK, cs.PostQuantum, d)
	if m != nil && cs.DidResume {
		m.resumed.WithLabelValues(cs.CipherSuiteName, strconv.FormatBool(cs.PostQuantum)).Inc()
	}
	if m != nil && cs.ResumptionRetried {
		m.retried.Inc()
	}
}

// Reloaded records the outcome of a configuration reload: err nil for a
// success. After a failure /healthz reports degraded until a reload
// succeeds.
func (m *Metrics) Reloaded(err error) {
	if m == nil {
		return
	}
	now := time.Now()
	result := "ok"
	if err != nil {
		result = "failed"
		m.reloadOK.Set(0)
	} else {
		m.reloadOK.Set(1)
	}
	m.reloads.WithLabelValues(result).Inc()
	m.reloadTime.WithLabelValues(result).Set(float64(now.UnixNano()) / 1e9)
	m.mu.Lock()
	m.reloadErr, m.reloadAt = err, now
	m.mu.Unlock()
}

// LastReloadError returns the last reload's error (nil after a success or
// when none was attempted) and its time.
func (m *Metrics) LastReloadError() (error, time.Time) {
	if m == nil {
		return nil, time.Time{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reloadErr, m.reloadAt
}

func (m *Metrics) failure(reason string) {
	if m != nil {
		m.hsFailures.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) revokedConns(n int) {
	if m != nil {
		m.revoked.Add(float64(n))
	}
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

func (m *Metrics) httpRefused(reason string) {
	if m != nil {
		m.httpRef.WithLabelValues(reason).Inc()
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

// StatusHandler serves /livez, /healthz and /metrics. /livez answers 200
// "ok" whenever the process serves its status endpoint, whatever the state
// of the target: use it for a liveness probe (restarting the proxy does not
// bring a target back). /healthz, for readiness, answers 200 "ok"
// when a connection to target can be opened within DialTimeout (default
// 1 s); the result is cached for CacheFor (default 1 s) so probes cannot
// turn the proxy into a connection hammer. It answers 503 when the target
// is unreachable, while draining (after SetDraining: SIGTERM, so a load
// balancer stops sending), and "degraded" after a failed reload (the
// previous configuration is still in use) until a reload succeeds. At the
// open-file limit (EMFILE, ENFILE) the target cannot be checked: the last
// result is kept rather than reporting a healthy target as unreachable.
type StatusHandler struct {
	// Target is the address probed: HOST:PORT, or unix:/path.
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
	// NoProbe skips the connection to Target: for a UDP service, which
	// cannot be probed without speaking its protocol. /healthz then
	// answers from the proxy's own state (draining, degraded, Degraded).
	NoProbe bool
	// Now is the clock CacheFor is measured on; nil means time.Now.
	Now func() time.Time
	// Pprof also serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/: CPU, heap, allocations, goroutines. Off by default:
	// they expose the process's internals, and a CPU profile costs CPU
	// while it runs.
	Pprof bool

	draining atomic.Bool

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
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if !h.checked.IsZero() && now().Sub(h.checked) < cache {
		return h.err
	}
	timeout := h.DialTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	network, addr := SplitNetworkAddr(h.Target)
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		c.Close()
	}
	if isFDLimit(err) {
		// Our own limit, not the target's health: keep the last result.
		return h.err
	}
	h.err, h.checked = err, now()
	return err
}

// SetDraining makes /healthz answer 503 "draining" (call it when shutdown
// starts, so that load balancers stop sending new connections).
func (h *StatusHandler) SetDraining() { h.draining.Store(true) }

func isFDLimit(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

func (h *StatusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/livez":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if h.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("draining\n"))
			return
		}
		if !h.NoProbe {
			if err := h.health(context.Background()); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("target unreachable\n"))
				return
			}
		}
		if err, at := h.Metrics.LastReloadError(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "degraded: the reload at %s failed, the previous configuration is in use: %s\n",
				at.UTC().Format(time.RFC3339), oneLine(err.Error()))
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
		if h.Pprof && strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
			servePprof(w, r)
			return
		}
		http.NotFound(w, r)
	}
}

// servePprof serves the net/http/pprof handlers (not through
// http.DefaultServeMux, which importing that package also fills).
func servePprof(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default: // the index, and the named profiles (heap, allocs, goroutine...)
		pprof.Index(w, r)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Handshake failure reasons: the bounded label set of
// mtls_proxy_handshake_failures_total (docs/operators-guide.md lists them):
//
//	denied                   refused by the ACL or identity policy
//	bad_key                  a proof or key that does not verify: wrong key or
//	                         PIN, a key not from every D-TA, a forgery
//	permit                   no valid time permit for today (revoked clients)
//	clock_skew               the client's clock is too far off
//	locked_out               an identity locked out after failed proofs
//	replay                   a replayed Milagro CS hello
//	unknown_identity         an unknown PSK identity
//	unknown_server_identity  no server key for the server identity asked for
//	timeout, peer_closed, reset, busy, negotiation, protocol, remote_alert, other
var failureReasons = []string{
	"denied", "bad_key", "permit", "clock_skew", "locked_out", "replay", "timeout", "peer_closed", "reset",
	"unknown_identity", "unknown_server_identity", "negotiation", "busy", "protocol", "remote_alert",
	"resumption_refused", "other",
}

// deniedReasons are the failure reasons of a peer refused on purpose
// (result "denied"), as opposed to a broken or abandoned handshake.
var deniedReasons = map[string]bool{
	"denied": true, "bad_key": true, "permit": true, "clock_skew": true, "locked_out": true, "replay": true,
}

// failureReason classifies a failed handshake into failureReasons.
func failureReason(err error) string {
	var de *DeniedError
	var ae *mtls.AlertError
	switch {
	case errors.As(err, &de):
		return "denied"
	case errors.Is(err, mtls.ErrResumptionRefused):
		// A resumption-only hello whose ticket was not resumed: the
		// client reconnects with a full handshake (routine).
		return "resumption_refused"
	case errors.Is(err, context.DeadlineExceeded) || isTimeoutErr(err):
		return "timeout"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "peer_closed"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, admission.ErrBusy):
		return "busy"
	case errors.As(err, &ae):
		if ae.Remote {
			return "remote_alert"
		}
		switch ae.Alert {
		case ciphersuite.AlertUnknownPSKIdentity:
			return "unknown_identity"
		case ciphersuite.AlertUnrecognizedName:
			return "unknown_server_identity"
		case ciphersuite.AlertAccessDenied:
			switch {
			case errors.Is(err, pairing.ErrAuthFailed):
				return "bad_key"
			case errors.Is(err, pairing.ErrPermitDay):
				return "permit"
			case errors.Is(err, pairing.ErrClockSkew):
				return "clock_skew"
			case errors.Is(err, ciphersuite.ErrLockedOut):
				return "locked_out"
			case errors.Is(err, ciphersuite.ErrReplayed):
				return "replay"
			}
			return "denied"
		case ciphersuite.AlertBadRecordMAC, ciphersuite.AlertDecryptError:
			return "bad_key"
		case ciphersuite.AlertHandshakeFailure, ciphersuite.AlertInsufficientSecurity, ciphersuite.AlertProtocolVersion:
			return "negotiation"
		}
		return "protocol"
	}
	return "other"
}
