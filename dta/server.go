package dta

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// ServerConfig configures a D-TA service.
type ServerConfig struct {
	Master *pairing.MasterShare // this D-TA's master share (not stored in Store)
	Store  *Store
	// PermitAhead is how many days ahead of today permits are issued
	// (default 1: today and tomorrow; at most 7). A day that has not begun
	// is issued only in the last PermitAheadHours before it does (default
	// DefaultPermitAheadHours, at most 168): this bounds how long a
	// revoked identity keeps working (window.go).
	PermitAhead      int
	PermitAheadHours int
	Logger           *slog.Logger          // nil: slog.Default()
	Now              func() time.Time      // nil: time.Now
	Rand             io.Reader             // nil: crypto/rand
	Registerer       prometheus.Registerer // nil: a private registry (see Server.Gatherer)
	// HandshakeTimeout bounds each TLS handshake and so how long a silent
	// connection holds a handshake slot (default 5 s); MaxHandshakes
	// bounds handshakes in progress (default 256), and MaxHandshakesPerAddr
	// those from one source, an IPv4 address or an IPv6 /64 (default 64:
	// clients behind one NAT share an address). See listener.go.
	HandshakeTimeout     time.Duration
	MaxHandshakes        int
	MaxHandshakesPerAddr int
	// FailureRate and FailureBurst size each source's budget of failed
	// handshakes (a token bucket; defaults 5 per second, burst 20): a
	// source that has spent it is refused at accept until it refills.
	FailureRate  float64
	FailureBurst int
	// AuditSealInterval is how often the service chains new audit rows
	// under a head (audit_chain.go; default 2 s): the longest a fresh row
	// stays unprovable.
	AuditSealInterval time.Duration
}

// Server is a running D-TA service. Make it with NewServer.
type Server struct {
	cfg   ServerConfig
	priv  *ecdh.PrivateKey
	fp    pairing.Fingerprint
	log   *slog.Logger
	now   func() time.Time
	rand  io.Reader
	m     *metrics
	reg   *prometheus.Registry
	adm   *admitter
	quiet *quietLog
	http  *http.Server

	refusals *refusalMeter
	health   healthCache

	mu        sync.Mutex
	lns       []*hsListener
	quietOnce sync.Once
	quietDone chan struct{}
	stopOnce  sync.Once

	sealer auditSealer
}

// NewServer prepares a service: it binds the store to the master share
// (recording its fingerprint on first use, refusing another share after).
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Master == nil || cfg.Store == nil {
		return nil, errors.New("dta: ServerConfig needs Master and Store")
	}
	if cfg.PermitAhead == 0 {
		cfg.PermitAhead = 1
	}
	if cfg.PermitAhead < 0 || cfg.PermitAhead > dtawire.MaxPermitAheadDays {
		return nil, fmt.Errorf("dta: PermitAhead %d outside 1..%d", cfg.PermitAhead, dtawire.MaxPermitAheadDays)
	}
	if cfg.PermitAheadHours == 0 {
		cfg.PermitAheadHours = dtawire.DefaultPermitAheadHours
	}
	if cfg.PermitAheadHours < 0 || cfg.PermitAheadHours > maxPermitAheadHours {
		return nil, fmt.Errorf("dta: PermitAheadHours %d outside 1..%d", cfg.PermitAheadHours, maxPermitAheadHours)
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	if cfg.MaxHandshakes == 0 {
		cfg.MaxHandshakes = 256
	}
	if cfg.MaxHandshakesPerAddr == 0 {
		cfg.MaxHandshakesPerAddr = 64
	}
	priv, err := cfg.Store.Bind(cfg.Master)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, priv: priv, fp: cfg.Master.Fingerprint(), log: cfg.Logger, now: cfg.Now, rand: cfg.Rand}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("dta", s.fp.String())
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	reg := cfg.Registerer
	if reg == nil {
		s.reg = prometheus.NewRegistry()
		reg = s.reg
	}
	s.m = newMetrics(reg)
	s.sealer.init(s, reg)
	s.adm = newAdmitter(&cfg, s.now)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mtls_dta_handshakes_in_progress", Help: "Connections holding a handshake slot.",
	}, func() float64 { return float64(s.adm.slots.Len()) }))
	s.quiet = newQuietLog(s.log, s.now)
	s.refusals = newRefusalMeter(s)
	s.quietDone = make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/enroll", s.handleEnroll)
	mux.HandleFunc("POST /v1/permits", s.handlePermits)
	mux.HandleFunc("POST /v1/renew", s.handleRenew)
	mux.HandleFunc("GET /v1/info", s.handleInfo)
	allow := map[string]string{"/v1/enroll": "POST", "/v1/permits": "POST", "/v1/renew": "POST", "/v1/info": "GET"}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if m, ok := allow[r.URL.Path]; ok {
			w.Header().Set("Allow", m)
			s.writeError(w, r, http.StatusMethodNotAllowed, dtawire.CodeBadRequest, r.URL.Path+" takes "+m+", not "+r.Method)
			return
		}
		s.writeError(w, r, http.StatusNotFound, dtawire.CodeBadRequest, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	s.http = &http.Server{
		Handler:           s.recheck(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// baseTLS is the TLS configuration every connection starts from. Session
// tickets are off: a resumed session would skip the PSK, so a secret
// replaced by re-enrollment or rotation would keep working through a
// ticket issued under it. The ECDHE group is P-256 when the client offers
// it (X25519 otherwise): both are 128-bit groups with constant-time
// implementations in Go's standard library, and P-256's costs about two
// thirds of X25519's per handshake, on the D-TA and on the endpoint, for
// a handshake every fetch runs.
func (s *Server) baseTLS() *mtls.Config {
	return &mtls.Config{Rand: s.rand, Time: s.now, CipherSuites: dtawire.Suites, HandshakeTimeout: s.cfg.HandshakeTimeout,
		CurvePreferences: []ciphersuite.CurveID{ciphersuite.P256, ciphersuite.X25519}, SessionTicketsDisabled: true}
}

// Fingerprint returns the D-TA's fingerprint.
func (s *Server) Fingerprint() pairing.Fingerprint { return s.fp }

// Gatherer returns the private metrics registry (nil when
// ServerConfig.Registerer was given).
func (s *Server) Gatherer() prometheus.Gatherer {
	if s.reg == nil {
		return nil
	}
	return s.reg
}

// credential answers the TLS layer's PSK lookup (an error makes the
// handshake fail with unknown_psk_identity) and recheck's: the secret of
// the PSK identity for the key ID the client named (its SNI), and, read
// with it, the credential's standing (nil: good; else ErrCodeUsed,
// ErrCodeExpired or ErrRevoked).
func (s *Server) credential(identity, serverName string) (psk []byte, standing, err error) {
	id, err := dtawire.ParsePSKIdentity(identity)
	if err != nil {
		return nil, nil, err
	}
	psk, standing, err = s.cfg.Store.credential(s.priv, id, serverName, s.now())
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Error("PSK lookup failed", "psk_identity", dtawire.CutID(identity), "err", err)
	}
	return psk, standing, err
}

// housekeep writes the summaries of rate-limited log lines and refusals
// every interval, and once more at Shutdown.
func (s *Server) housekeep() {
	t := time.NewTicker(quietInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.quiet.flush()
			s.refusals.flush(false)
		case <-s.quietDone:
			return
		}
	}
}

// Handler returns the HTTP handler of the API. Requests must arrive over a
// connection made by Serve (it reads the PSK identity from it); this is for
// tests and fuzzing.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve accepts connections on ln, admits each by its source (see
// listener.go), runs the TLS handshake and serves the API. It returns
// after Shutdown with http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.quietOnce.Do(func() { go s.housekeep() })
	hl := newHSListener(ln, s)
	s.mu.Lock()
	s.lns = append(s.lns, hl)
	s.mu.Unlock()
	go hl.acceptLoop()
	s.sealer.start()
	return s.http.Serve(hl)
}

// Shutdown stops accepting, lets requests in progress finish (until ctx
// ends) and closes the connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.quietDone) })
	err := s.http.Shutdown(ctx)
	// The summaries of this last interval (housekeep may not have run).
	s.quiet.flush()
	s.refusals.flush(true)
	s.sealer.stop(ctx)
	return err
}

// ---- handlers ----

type reqCtx struct {
	id     dtawire.PSKIdentity
	sni    string
	remote string
}

func (s *Server) reqInfo(r *http.Request) (reqCtx, bool) {
	c, ok := mtls.ConnFromContext(r.Context())
	if !ok {
		return reqCtx{}, false
	}
	st := c.ConnectionState()
	id, err := dtawire.ParsePSKIdentity(st.PeerIdentity)
	if err != nil {
		return reqCtx{}, false
	}
	return reqCtx{id: id, sni: st.ServerName, remote: c.RemoteAddr().String()}, true
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.m.requests.WithLabelValues(endpointLabel(r), code).Inc()
	s.writeJSON(w, status, dtawire.ErrorResponse{Error: code, Message: msg})
}

func endpointLabel(r *http.Request) string {
	switch r.URL.Path {
	case "/v1/enroll", "/v1/permits", "/v1/renew", "/v1/info":
		return strings.TrimPrefix(r.URL.Path, "/v1/")
	}
	return "other"
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error(what, "err", err, "path", r.URL.Path)
	s.writeError(w, r, http.StatusInternalServerError, dtawire.CodeInternal, "internal error (see the D-TA's log)")
}

// readEmpty accepts an empty body or one empty JSON object.
func readEmpty(r *http.Request) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, dtawire.MaxBodySize+1))
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	var v struct{}
	return dtawire.DecodeStrict(strings.NewReader(string(data)), dtawire.MaxBodySize, &v)
}

func (s *Server) newRenewal(kind dtawire.Kind, identity string) (secret [dtawire.SecretSize]byte, sealed []byte, kid string, err error) {
	if _, err = io.ReadFull(s.rand, secret[:]); err != nil {
		return
	}
	sealed, err = seal(s.rand, s.cfg.Store.pub, secret[:], renewAAD(kind, identity))
	return secret, sealed, dtawire.KeyID(secret[:]), err
}

func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	rc, ok := s.reqInfo(r)
	if !ok {
		s.writeError(w, r, http.StatusUnauthorized, dtawire.CodeBadRequest, "no authenticated credential")
		return
	}
	if !rc.id.Enroll {
		s.writeError(w, r, http.StatusForbidden, dtawire.CodeWrongKind, "enrollment needs an enrollment code, not a renewal credential")
		return
	}
	if err := readEmpty(r); err != nil {
		s.writeError(w, r, http.StatusBadRequest, dtawire.CodeBadRequest, "the enroll body must be empty or {}: "+err.Error())
		return
	}
	if !s.admitCredential(w, r, rc, "enroll") {
		return
	}
	// Look the code up first to compute the share outside the write
	// transaction; redeemCode re-reads it and decides.
	var row codeRow
	var err error
	if row.kind, row.identity, err = s.cfg.Store.codeOwner(rc.id.Code); err != nil {
		s.internal(w, r, "enroll: code lookup", err)
		return
	}
	// A code made before the identity rule (pairing.CheckID) tightened may
	// name a look-alike identity: refuse it rather than issue a key.
	if err := dtawire.CheckIdentity(row.kind, row.identity); err != nil {
		s.writeError(w, r, http.StatusBadRequest, dtawire.CodeBadRequest, "this code's identity is refused: "+err.Error()+"; ask the D-TA's operator for a code for a valid identity")
		return
	}
	resp := dtawire.EnrollResponse{Kind: row.kind, Identity: row.identity, Fingerprint: s.fp.String()}
	if resp.Share, err = issueShare(s.cfg.Master, row.kind, row.identity); err != nil {
		s.internal(w, r, "enroll: issue share", err)
		return
	}
	issued := string(row.kind) + " share"
	if row.kind == dtawire.KindClient {
		now := s.now()
		today := pairing.Day(now)
		var days []string
		for d := today; d <= today+uint64(s.cfg.PermitAhead); d++ {
			if ok, _ := s.permitIssuable(d, now); !ok {
				break
			}
			p, err := issuePermit(s.cfg.Master, row.identity, d)
			if err != nil {
				s.internal(w, r, "enroll: issue permit", err)
				return
			}
			resp.Permits = append(resp.Permits, p)
			days = append(days, pairing.FormatDay(d))
		}
		issued += ", permits for " + strings.Join(days, ", ")
	}
	var secret [dtawire.SecretSize]byte
	_, err = s.cfg.Store.redeemCode(rc.id.Code, func(kind dtawire.Kind, identity string) ([]byte, string, error) {
		sec, sealed, kid, err := s.newRenewal(kind, identity)
		secret = sec
		return sealed, kid, err
	}, rc.remote, issued)
	defer clear(secret[:])
	switch {
	case errors.Is(err, ErrCodeUsed):
		s.log.Warn("enroll: code used again", "code", rc.id.Code.String(), "remote", rc.remote)
		s.writeError(w, r, http.StatusForbidden, dtawire.CodeCodeUsed, "this enrollment code has been used; ask the D-TA's operator for a new one")
		return
	case errors.Is(err, ErrCodeExpired):
		s.writeError(w, r, http.StatusForbidden, dtawire.CodeCodeExpired, "this enrollment code has expired; ask the D-TA's operator for a new one")
		return
	case errors.Is(err, ErrRevoked):
		s.writeError(w, r, http.StatusForbidden, dtawire.CodeRevoked, fmt.Sprintf("%s %q is revoked at this D-TA", row.kind, row.identity))
		return
	case err != nil:
		s.internal(w, r, "enroll: redeem", err)
		return
	}
	resp.RenewalSecret = base64.RawURLEncoding.EncodeToString(secret[:])
	s.m.issued.WithLabelValues("share_" + string(row.kind)).Inc()
	s.m.issued.WithLabelValues("permit").Add(float64(len(resp.Permits)))
	s.m.requests.WithLabelValues("enroll", "ok").Inc()
	s.log.Info("enrolled", "kind", row.kind, "identity", row.identity, "code", rc.id.Code.String(), "remote", rc.remote)
	s.writeJSON(w, http.StatusOK, resp)
}

// renewalOnly refuses enrollment codes on the renewal endpoints.
func (s *Server) renewalOnly(w http.ResponseWriter, r *http.Request, rc reqCtx) bool {
	if rc.id.Enroll {
		s.writeError(w, r, http.StatusForbidden, dtawire.CodeWrongKind, "this endpoint needs a renewal credential, not an enrollment code")
		return false
	}
	return true
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request, rc reqCtx, action, detail string) bool {
	err := s.cfg.Store.authorize(rc.id.Kind, rc.id.Identity, rc.sni, action, rc.remote, detail)
	switch {
	case errors.Is(err, ErrRevoked):
		s.log.Warn(action+": revoked identity refused", "kind", rc.id.Kind, "identity", rc.id.Identity, "remote", rc.remote)
		s.writeError(w, r, http.StatusForbidden, dtawire.CodeRevoked, fmt.Sprintf("%s %q is revoked at D-TA %s", rc.id.Kind, rc.id.Identity, s.fp))
		return false
	case err != nil:
		s.internal(w, r, action+": authorize", err)
		return false
	}
	return true
}

func (s *Server) handlePermits(w http.ResponseWriter, r *http.Request) {
	rc, ok := s.reqInfo(r)
	if !ok {
		s.writeError(w, r, http.StatusUnauthorized, dtawire.CodeBadRequest, "no authenticated credential")
		return
	}
	if !s.renewalOnly(w, r, rc) {
		return
	}
	if rc.id.Kind != dtawire.KindClient {
		s.writeError(w, r, http.StatusForbidden, dtawire.CodeWrongKind, "time permits are for CS clients; this credential is kind "+string(rc.id.Kind))
		return
	}
	if !s.admitCredential(w, r, rc, "permits") {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, dtawire.MaxBodySize+1))
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, dtawire.CodeBadRequest, err.Error())
		return
	}
	req, err := dtawire.ParsePermitsRequest(body)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, dtawire.CodeBadRequest, err.Error())
		return
	}
	now := s.now()
	for _, d := range req.Days {
		if ok, why := s.permitIssuable(d, now); !ok {
			s.writeError(w, r, http.StatusBadRequest, dtawire.CodeDayOutOfRange, why)
			return
		}
	}
	// The revocation check (and its audit entry) comes before any permit
	// is computed.
	if !s.authorize(w, r, rc, "permits", "days "+dtawire.FormatDays(req.Days)) {
		return
	}
	resp := dtawire.PermitsResponse{Permits: make([]dtawire.PermitJSON, 0, len(req.Days))}
	for _, d := range req.Days {
		p, err := issuePermit(s.cfg.Master, rc.id.Identity, d)
		if err != nil {
			s.internal(w, r, "permits: issue", err)
			return
		}
		resp.Permits = append(resp.Permits, p)
	}
	s.m.issued.WithLabelValues("permit").Add(float64(len(resp.Permits)))
	s.m.requests.WithLabelValues("permits", "ok").Inc()
	s.writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleRenew(w http.ResponseWriter, r *http.Request) {
	rc, ok := s.reqInfo(r)
	if !ok {
		s.writeError(w, r, http.StatusUnauthorized, dtawire.CodeBadRequest, "no authenticated credential")
		return
	}
	if !s.renewalOnly(w, r, rc) {
		return
	}
	if err := readEmpty(r); err != nil {
		s.writeError(w, r, http.StatusBadRequest, dtawire.CodeBadRequest, "the renew body must be empty or {}: "+err.Error())
		return
	}
	if !s.admitCredential(w, r, rc, "renew") {
		return
	}
	// Authorizing with the pending secret promotes it first.
	if !s.authorize(w, r, rc, "renew-auth", "") {
		return
	}
	secret, sealed, kid, err := s.newRenewal(rc.id.Kind, rc.id.Identity)
	defer clear(secret[:])
	if err != nil {
		s.internal(w, r, "renew", err)
		return
	}
	if err := s.cfg.Store.setPending(rc.id.Kind, rc.id.Identity, sealed, kid, rc.remote); errors.Is(err, ErrRevoked) {
		s.writeError(w, r, http.StatusForbidden, dtawire.CodeRevoked, fmt.Sprintf("%s %q is revoked", rc.id.Kind, rc.id.Identity))
		return
	} else if err != nil {
		s.internal(w, r, "renew", err)
		return
	}
	s.m.requests.WithLabelValues("renew", "ok").Inc()
	s.writeJSON(w, http.StatusOK, dtawire.RenewResponse{RenewalSecret: base64.RawURLEncoding.EncodeToString(secret[:])})
}

// errorCode maps a store error to the spec's error code.
func errorCode(err error) string {
	switch {
	case errors.Is(err, ErrCodeUsed):
		return dtawire.CodeCodeUsed
	case errors.Is(err, ErrCodeExpired):
		return dtawire.CodeCodeExpired
	case errors.Is(err, ErrRevoked):
		return dtawire.CodeRevoked
	}
	return dtawire.CodeInternal
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	rc, ok := s.reqInfo(r)
	if !ok {
		s.writeError(w, r, http.StatusUnauthorized, dtawire.CodeBadRequest, "no authenticated credential")
		return
	}
	// Only a credential still valid: an unused, unexpired code, or the
	// renewal credential of an identity not revoked.
	if !s.admitCredential(w, r, rc, "info") {
		return
	}
	// A handshake with a pending renewal secret promotes it, on this
	// endpoint too.
	if !rc.id.Enroll {
		if _, err := s.cfg.Store.promotePending(rc.id.Kind, rc.id.Identity, rc.sni, rc.remote); err != nil {
			s.internal(w, r, "info: promote", err)
			return
		}
	}
	s.m.requests.WithLabelValues("info", "ok").Inc()
	s.writeJSON(w, http.StatusOK, dtawire.InfoResponse{
		Fingerprint: s.fp.String(), Version: dtawire.Version,
		Time: s.now().UTC().Format(time.RFC3339), PermitAhead: s.cfg.PermitAhead, PermitAheadHours: s.cfg.PermitAheadHours,
	})
}
