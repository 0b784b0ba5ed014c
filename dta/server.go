package dta

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"database/sql"
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
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// Suites are the only cipher suites the service and its clients use:
// ECDHE_PSK (forward secret, mutually authenticated by the PSK).
var Suites = []uint16{0xCCAC, 0xD001, 0xD002}

// ServerConfig configures a D-TA service.
type ServerConfig struct {
	Master *pairing.MasterShare // this D-TA's master share (not stored in Store)
	Store  *Store
	// PermitAhead is how many days ahead of today permits are issued
	// (default 1: today and tomorrow; at most 7).
	PermitAhead int
	Logger      *slog.Logger          // nil: slog.Default()
	Now         func() time.Time      // nil: time.Now
	Rand        io.Reader             // nil: crypto/rand
	Registerer  prometheus.Registerer // nil: a private registry (see Server.Gatherer)
	// HandshakeTimeout bounds each TLS handshake (default 10 s);
	// MaxHandshakes bounds handshakes in progress (default 256), and
	// MaxHandshakesPerAddr those from one IP address (default 64: clients
	// behind one NAT share an address).
	HandshakeTimeout     time.Duration
	MaxHandshakes        int
	MaxHandshakesPerAddr int
}

// Server is a running D-TA service. Make it with NewServer.
type Server struct {
	cfg     ServerConfig
	priv    *ecdh.PrivateKey
	fp      pairing.Fingerprint
	log     *slog.Logger
	now     func() time.Time
	rand    io.Reader
	tlsCfg  *mtls.Config
	m       *metrics
	reg     *prometheus.Registry
	limiter *failLimiter
	http    *http.Server

	mu  sync.Mutex
	lns []*hsListener
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
	if cfg.PermitAhead < 0 || cfg.PermitAhead > maxPermitAheadDays {
		return nil, fmt.Errorf("dta: PermitAhead %d outside 1..%d", cfg.PermitAhead, maxPermitAheadDays)
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 10 * time.Second
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
	s.limiter = newFailLimiter(s.now)
	s.tlsCfg = &mtls.Config{
		Rand:             s.rand,
		Time:             s.now,
		CipherSuites:     Suites,
		HandshakeTimeout: cfg.HandshakeTimeout,
		// The client's server_name names which renewal secret it holds
		// during a rotation (creds.go keyID), so the PSK callback needs it.
		GetConfigForClient: func(hi *mtls.ClientHelloInfo) (*mtls.Config, error) {
			c := s.baseTLS()
			c.GetServerPSK = func(identity string) ([]byte, error) { return s.psk(identity, hi.ServerName) }
			return c, nil
		},
		GetServerPSK: func(identity string) ([]byte, error) { return s.psk(identity, "") },
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/enroll", s.handleEnroll)
	mux.HandleFunc("POST /v1/permits", s.handlePermits)
	mux.HandleFunc("POST /v1/renew", s.handleRenew)
	mux.HandleFunc("GET /v1/info", s.handleInfo)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, http.StatusNotFound, CodeBadRequest, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ConnContext:       mtls.ConnContext,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

func (s *Server) baseTLS() *mtls.Config {
	return &mtls.Config{Rand: s.rand, Time: s.now, CipherSuites: Suites, HandshakeTimeout: s.cfg.HandshakeTimeout}
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

// psk answers the TLS layer's PSK lookup. An error makes the handshake
// fail with unknown_psk_identity.
func (s *Server) psk(identity, serverName string) ([]byte, error) {
	id, err := ParsePSKIdentity(identity)
	if err != nil {
		return nil, err
	}
	var psk []byte
	if id.Enroll {
		psk, err = s.cfg.Store.codePSK(s.priv, id.Code)
	} else {
		psk, err = s.cfg.Store.renewalPSK(s.priv, id.Kind, id.Identity, serverName)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Error("PSK lookup failed", "psk_identity", identity, "err", err)
	}
	return psk, err
}

// Handler returns the HTTP handler of the API. Requests must arrive over a
// connection made by Serve (it reads the PSK identity from it); this is for
// tests and fuzzing.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve accepts connections on ln, runs the TLS handshake for each (at most
// MaxHandshakes at once, slowing down addresses that keep failing) and
// serves the API. It returns after Shutdown with http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	hl := newHSListener(ln, s)
	s.mu.Lock()
	s.lns = append(s.lns, hl)
	s.mu.Unlock()
	go hl.acceptLoop()
	return s.http.Serve(hl)
}

// Shutdown stops accepting, lets requests in progress finish (until ctx
// ends) and closes the connections.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.http.Shutdown(ctx)
}

// hsListener hands net/http connections whose handshake has completed.
type hsListener struct {
	inner     net.Listener
	s         *Server
	out       chan net.Conn
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// pending counts handshakes in progress per address (at most
	// MaxHandshakes entries), so one address cannot take every slot.
	pendingMu sync.Mutex
	pending   map[string]int
}

func newHSListener(inner net.Listener, s *Server) *hsListener {
	return &hsListener{inner: inner, s: s, out: make(chan net.Conn), sem: make(chan struct{}, s.cfg.MaxHandshakes),
		done: make(chan struct{}), pending: make(map[string]int)}
}

func (l *hsListener) Addr() net.Addr { return l.inner.Addr() }

func (l *hsListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.inner.Close()
}

func (l *hsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.out:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *hsListener) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				l.Close()
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.s.log.Warn("accept failed", "err", err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		host := remoteHost(c.RemoteAddr())
		l.pendingMu.Lock()
		busy := l.pending[host] >= l.s.cfg.MaxHandshakesPerAddr
		l.pendingMu.Unlock()
		if busy {
			l.s.m.hsFailures.WithLabelValues("too_many_from_address").Inc()
			l.s.log.Warn("too many handshakes in progress from one address: connection dropped", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		select {
		case l.sem <- struct{}{}:
			l.pendingMu.Lock()
			l.pending[host]++
			l.pendingMu.Unlock()
			go l.handshake(c, host)
		default:
			l.s.m.hsFailures.WithLabelValues("overloaded").Inc()
			l.s.log.Warn("too many handshakes in progress: connection dropped", "remote", c.RemoteAddr().String())
			c.Close()
		}
	}
}

func remoteHost(a net.Addr) string {
	if a == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

func (l *hsListener) handshake(c net.Conn, host string) {
	defer func() {
		l.pendingMu.Lock()
		if l.pending[host]--; l.pending[host] <= 0 {
			delete(l.pending, host)
		}
		l.pendingMu.Unlock()
		<-l.sem
	}()
	s := l.s
	if d := s.limiter.delay(host); d > 0 {
		s.m.slowed.Inc()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			c.Close()
			return
		}
	}
	tc := mtls.Server(c, s.tlsCfg)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		reason := "other"
		var ae *ciphersuite.AlertError
		if errors.As(err, &ae) {
			reason = ae.Alert.String()
			if ae.Remote {
				reason = "remote_" + reason
			}
		} else if errors.Is(err, context.DeadlineExceeded) {
			reason = "timeout"
		} else if errors.Is(err, io.EOF) {
			reason = "eof"
		}
		s.limiter.fail(host)
		s.m.hsFailures.WithLabelValues(reason).Inc()
		s.log.Warn("handshake failed", "remote", c.RemoteAddr().String(), "reason", reason, "err", err)
		return
	}
	s.limiter.success(host)
	select {
	case l.out <- tc:
	case <-l.done:
		tc.Close()
	}
}

// ---- handlers ----

type reqCtx struct {
	id     PSKIdentity
	sni    string
	remote string
}

func (s *Server) reqInfo(r *http.Request) (reqCtx, bool) {
	c, ok := mtls.ConnFromContext(r.Context())
	if !ok {
		return reqCtx{}, false
	}
	st := c.ConnectionState()
	id, err := ParsePSKIdentity(st.PeerIdentity)
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
	s.writeJSON(w, status, ErrorResponse{Error: code, Message: msg})
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
	s.writeError(w, r, http.StatusInternalServerError, CodeInternal, "internal error (see the D-TA's log)")
}

// readEmpty accepts an empty body or one empty JSON object.
func readEmpty(r *http.Request) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodySize+1))
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	var v struct{}
	return decodeStrict(strings.NewReader(string(data)), maxBodySize, &v)
}

func (s *Server) newRenewal(kind Kind, identity string) (secret [SecretSize]byte, sealed []byte, kid string, err error) {
	if _, err = io.ReadFull(s.rand, secret[:]); err != nil {
		return
	}
	sealed, err = seal(s.rand, s.cfg.Store.pub, secret[:], renewAAD(kind, identity))
	return secret, sealed, keyID(secret[:]), err
}

func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	rc, ok := s.reqInfo(r)
	if !ok {
		s.writeError(w, r, http.StatusUnauthorized, CodeBadRequest, "no authenticated credential")
		return
	}
	if !rc.id.Enroll {
		s.writeError(w, r, http.StatusForbidden, CodeWrongKind, "enrollment needs an enrollment code, not a renewal credential")
		return
	}
	if err := readEmpty(r); err != nil {
		s.writeError(w, r, http.StatusBadRequest, CodeBadRequest, "the enroll body must be empty or {}: "+err.Error())
		return
	}
	// Look the code up first to compute the share outside the write
	// transaction; redeemCode re-reads it and decides.
	var row codeRow
	if err := s.cfg.Store.db.QueryRow(`SELECT kind, identity FROM codes WHERE id=?`, rc.id.Code.String()).Scan(&row.kind, &row.identity); err != nil {
		s.internal(w, r, "enroll: code lookup", err)
		return
	}
	resp := EnrollResponse{Kind: row.kind, Identity: row.identity, Fingerprint: s.fp.String()}
	var err error
	if resp.Share, err = issueShare(s.cfg.Master, row.kind, row.identity); err != nil {
		s.internal(w, r, "enroll: issue share", err)
		return
	}
	issued := string(row.kind) + " share"
	if row.kind == KindClient {
		today := pairing.Day(s.now())
		for d := today; d <= today+uint64(s.cfg.PermitAhead); d++ {
			p, err := issuePermit(s.cfg.Master, row.identity, d)
			if err != nil {
				s.internal(w, r, "enroll: issue permit", err)
				return
			}
			resp.Permits = append(resp.Permits, p)
		}
		issued += fmt.Sprintf(", permits for days %d..%d", today, today+uint64(s.cfg.PermitAhead))
	}
	var secret [SecretSize]byte
	_, err = s.cfg.Store.redeemCode(rc.id.Code, func(kind Kind, identity string) ([]byte, string, error) {
		sec, sealed, kid, err := s.newRenewal(kind, identity)
		secret = sec
		return sealed, kid, err
	}, rc.remote, issued)
	defer clear(secret[:])
	switch {
	case errors.Is(err, ErrCodeUsed):
		s.log.Warn("enroll: code used again", "code", rc.id.Code.String(), "remote", rc.remote)
		s.writeError(w, r, http.StatusForbidden, CodeCodeUsed, "this enrollment code has been used; ask the D-TA's operator for a new one")
		return
	case errors.Is(err, ErrCodeExpired):
		s.writeError(w, r, http.StatusForbidden, CodeCodeExpired, "this enrollment code has expired; ask the D-TA's operator for a new one")
		return
	case errors.Is(err, ErrRevoked):
		s.writeError(w, r, http.StatusForbidden, CodeRevoked, fmt.Sprintf("%s %q is revoked at this D-TA", row.kind, row.identity))
		return
	case err != nil:
		s.internal(w, r, "enroll: redeem", err)
		return
	}
	resp.RenewalSecret = b64.EncodeToString(secret[:])
	s.m.issued.WithLabelValues("share_" + string(row.kind)).Inc()
	s.m.issued.WithLabelValues("permit").Add(float64(len(resp.Permits)))
	s.m.requests.WithLabelValues("enroll", "ok").Inc()
	s.log.Info("enrolled", "kind", row.kind, "identity", row.identity, "code", rc.id.Code.String(), "remote", rc.remote)
	s.writeJSON(w, http.StatusOK, resp)
}

// renewalOnly refuses enrollment codes on the renewal endpoints.
func (s *Server) renewalOnly(w http.ResponseWriter, r *http.Request, rc reqCtx) bool {
	if rc.id.Enroll {
		s.writeError(w, r, http.StatusForbidden, CodeWrongKind, "this endpoint needs a renewal credential, not an enrollment code")
		return false
	}
	return true
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request, rc reqCtx, action, detail string) bool {
	err := s.cfg.Store.authorize(rc.id.Kind, rc.id.Identity, rc.sni, action, rc.remote, detail)
	switch {
	case errors.Is(err, ErrRevoked):
		s.log.Warn(action+": revoked identity refused", "kind", rc.id.Kind, "identity", rc.id.Identity, "remote", rc.remote)
		s.writeError(w, r, http.StatusForbidden, CodeRevoked, fmt.Sprintf("%s %q is revoked at D-TA %s", rc.id.Kind, rc.id.Identity, s.fp))
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
		s.writeError(w, r, http.StatusUnauthorized, CodeBadRequest, "no authenticated credential")
		return
	}
	if !s.renewalOnly(w, r, rc) {
		return
	}
	if rc.id.Kind != KindClient {
		s.writeError(w, r, http.StatusForbidden, CodeWrongKind, "time permits are for CS clients; this credential is kind "+string(rc.id.Kind))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodySize+1))
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	req, err := ParsePermitsRequest(body)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	today := pairing.Day(s.now())
	for _, d := range req.Days {
		if d+1 < today || d > today+uint64(s.cfg.PermitAhead) || d == 0 {
			s.writeError(w, r, http.StatusBadRequest, CodeDayOutOfRange,
				fmt.Sprintf("day %d (%s) is outside %d..%d (yesterday to today+%d)", d, pairing.FormatDay(d), today-1, today+uint64(s.cfg.PermitAhead), s.cfg.PermitAhead))
			return
		}
	}
	resp := PermitsResponse{Permits: make([]PermitJSON, 0, len(req.Days))}
	for _, d := range req.Days {
		p, err := issuePermit(s.cfg.Master, rc.id.Identity, d)
		if err != nil {
			s.internal(w, r, "permits: issue", err)
			return
		}
		resp.Permits = append(resp.Permits, p)
	}
	if !s.authorize(w, r, rc, "permits", fmt.Sprintf("days %v", req.Days)) {
		return
	}
	s.m.issued.WithLabelValues("permit").Add(float64(len(resp.Permits)))
	s.m.requests.WithLabelValues("permits", "ok").Inc()
	s.writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleRenew(w http.ResponseWriter, r *http.Request) {
	rc, ok := s.reqInfo(r)
	if !ok {
		s.writeError(w, r, http.StatusUnauthorized, CodeBadRequest, "no authenticated credential")
		return
	}
	if !s.renewalOnly(w, r, rc) {
		return
	}
	if err := readEmpty(r); err != nil {
		s.writeError(w, r, http.StatusBadRequest, CodeBadRequest, "the renew body must be empty or {}: "+err.Error())
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
		s.writeError(w, r, http.StatusForbidden, CodeRevoked, fmt.Sprintf("%s %q is revoked", rc.id.Kind, rc.id.Identity))
		return
	} else if err != nil {
		s.internal(w, r, "renew", err)
		return
	}
	s.m.requests.WithLabelValues("renew", "ok").Inc()
	s.writeJSON(w, http.StatusOK, RenewResponse{RenewalSecret: b64.EncodeToString(secret[:])})
}

// errorCode maps a store error to the spec's error code.
func errorCode(err error) string {
	switch {
	case errors.Is(err, ErrCodeUsed):
		return CodeCodeUsed
	case errors.Is(err, ErrCodeExpired):
		return CodeCodeExpired
	case errors.Is(err, ErrRevoked):
		return CodeRevoked
	}
	return CodeInternal
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	rc, ok := s.reqInfo(r)
	if !ok {
		s.writeError(w, r, http.StatusUnauthorized, CodeBadRequest, "no authenticated credential")
		return
	}
	// Only a credential still valid: an unused, unexpired code, or the
	// renewal credential of an identity not revoked.
	err := s.cfg.Store.credentialValid(rc.id, s.now())
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		// A refused credential is audited (a used code tried again).
		kind, id, detail := rc.id.Kind, rc.id.Identity, ""
		if rc.id.Enroll {
			detail = "code " + rc.id.Code.String()
			s.cfg.Store.db.QueryRow(`SELECT kind, identity FROM codes WHERE id=?`, rc.id.Code.String()).Scan(&kind, &id)
		}
		if aerr := s.cfg.Store.Audit("info", kind, id, rc.remote, errorCode(err), detail); aerr != nil {
			s.log.Error("audit", "err", aerr)
		}
	}
	switch {
	case errors.Is(err, ErrCodeUsed):
		s.writeError(w, r, http.StatusForbidden, CodeCodeUsed, "this enrollment code has been used")
		return
	case errors.Is(err, ErrCodeExpired):
		s.writeError(w, r, http.StatusForbidden, CodeCodeExpired, "this enrollment code has expired")
		return
	case errors.Is(err, ErrRevoked):
		s.writeError(w, r, http.StatusForbidden, CodeRevoked, fmt.Sprintf("%s %q is revoked at D-TA %s", rc.id.Kind, rc.id.Identity, s.fp))
		return
	case err != nil:
		s.internal(w, r, "info", err)
		return
	}
	s.m.requests.WithLabelValues("info", "ok").Inc()
	s.writeJSON(w, http.StatusOK, InfoResponse{
		Fingerprint: s.fp.String(), Version: Version,
		Time: s.now().UTC().Format(time.RFC3339), PermitAhead: s.cfg.PermitAhead,
	})
}
