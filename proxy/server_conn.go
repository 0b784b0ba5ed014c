package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// handle serves one accepted connection in two phases. open (admission,
// handshake, ACL, dial) runs here; the forwarding runs on a goroutine of
// its own (detach), which never held open's frames: its stack stays small
// (an idle connection's cost is mostly its two goroutine stacks).
func (s *Server) handle(ctx context.Context, raw net.Conn, t *tracked) {
	s.Metrics.connOpen()
	c, result := s.open(ctx, raw, t)
	if c == nil {
		s.Metrics.connClose(result)
		return
	}
	t.detach(func() { s.Metrics.connClose(c.forward()) })
}

// serverConn is a connection open and ready to forward.
type serverConn struct {
	start   time.Time
	log     *slog.Logger
	sc      SecureConn
	up      net.Conn
	p       *pipe
	upCopy  func(dst io.Writer, src io.Reader) error
	release func() // frees the connection's MaxConns slot

	// HTTP identity mode: the connection is served by front (up and p
	// are nil).
	front    *httpFront
	ctx      context.Context
	id, alpn string
	lifetime time.Duration
	onBytes  func(up bool, n int)
}

// forward runs the pipe until both directions end, closes both sides and
// returns the connection's result for the metrics.
func (c *serverConn) forward() string {
	if c.front != nil {
		return c.serveHTTP()
	}
	err := c.p.run(c.upCopy)
	c.up.Close()
	c.sc.Close()
	if c.release != nil {
		c.release()
	}
	return logClosed(c.log, c.p, err, c.start)
}

// logClosed logs the end of a forwarded connection (run's error err) and
// returns its result for the metrics.
func logClosed(log *slog.Logger, p *pipe, err error, start time.Time) string {
	result := resultOK
	switch {
	case err == errLifetime:
		result = "lifetime"
	case err != nil:
		result = "closed_with_error"
	}
	if !log.Enabled(context.Background(), slog.LevelInfo) {
		// Built only when written: a mass close must not allocate a log
		// record per connection that nobody reads.
		return result
	}
	attrs := []any{"bytes_up", p.up.Load(), "bytes_down", p.down.Load(),
		"duration", time.Since(start).Round(time.Millisecond)}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	log.Info("connection closed", attrs...)
	return result
}

// open admits, authenticates and connects one accepted connection. It
// returns the connection ready to forward, or nil and the result to count
// after it has closed everything it opened.
func (s *Server) open(ctx context.Context, raw net.Conn, t *tracked) (_ *serverConn, result string) {
	start := time.Now()
	log := s.logger().With("conn", t.id, "mode", "server", "remote", remoteString(raw))
	result = resultError

	s.guardMu.Lock()
	guards := s.guards
	s.guardMu.Unlock()
	source := guards.Keyer.Addr(raw.RemoteAddr())
	admitRelease, admitted := guards.Budget.Admit(source)
	if !admitted {
		// This source spent its failure budget (failed proofs, replays,
		// hellos refused by a lockout): held in the tarpit before any
		// work, so it loses its concurrency instead of reconnecting.
		s.Metrics.handshake("", resultBusy, 0)
		t.handedOff.Store(true)
		guards.Pit.Add(source, raw)
		return nil, resultBusy
	}
	defer admitRelease()
	scarce := s.slots.Scarce()
	slot, ok := s.slots.Acquire(source, func() { raw.Close() })
	if !ok {
		s.Metrics.handshake("", resultBusy, 0)
		if ok, n := s.deniedLog.allow(time.Now()); ok {
			log.Warn("too many handshakes in progress; connection held, then closed", "pending", s.slots.Len(), "source", source.String(), "suppressed", n)
		}
		// Held in the tarpit rather than closed: a source that keeps more
		// than its share of slots loses its concurrency instead of
		// reconnecting at once.
		t.handedOff.Store(true)
		guards.Pit.Add(source, raw)
		return nil, resultBusy
	}
	releaseHS := slot.Release
	defer releaseHS()

	st := s.cur.Load()
	newConn := s.NewConn
	if newConn == nil {
		newConn = func(c net.Conn, cfg *mtls.Config) SecureConn { return mtls.Server(c, cfg) }
	}
	sc := newConn(raw, st.cfg)
	t.add(func() { sc.Close() })
	var (
		up      net.Conn
		release func()
		opened  bool
	)
	defer func() {
		if !opened {
			if up != nil {
				up.Close()
			}
			sc.Close()
			if release != nil {
				release()
			}
		}
	}()

	hsTimeout := orDefault(s.HandshakeTimeout, DefaultHandshakeTimeout)
	if hello := orDefault(s.HelloTimeout, DefaultHelloTimeout); scarce && hello < hsTimeout {
		hsTimeout = hello // slots are scarce: a slow handshake gives its slot back soon
	}
	hctx, cancel := context.WithTimeout(ctx, hsTimeout)
	// A peer that closes before sending a byte (a TCP health probe, such
	// as a client-mode proxy's /healthz, or a port scan) tried no
	// handshake: tell it apart without a buffer (Linux: a one-byte peek).
	if wait := readinessWaiter(raw); wait != nil {
		dl, _ := hctx.Deadline()
		raw.SetReadDeadline(dl)
		werr := wait()
		raw.SetReadDeadline(time.Time{})
		if werr == io.EOF {
			cancel()
			log.Debug("closed before the handshake")
			return nil, "closed_before_handshake"
		}
	}
	err := sc.HandshakeContext(hctx)
	cancel()
	releaseHS()
	admitRelease()
	hsDur := time.Since(start)
	if err != nil {
		var de *DeniedError
		reason := failureReason(err)
		suite := mtls.FailedSuite(err) // "" (unknown) if the hello named none we share
		switch {
		case errors.As(err, &de):
			result = resultDenied
			s.Metrics.handshake(suite, resultDenied, hsDur)
			log.Warn("access denied", "identity", de.ID, "reason", de.Reason)
		case deniedReasons[reason]:
			// A proof that does not verify, a lockout, a replay, a
			// permit or clock refusal: denied, and logged at a bounded
			// rate (a flood of forged hellos must not flood the log).
			result = resultDenied
			s.Metrics.handshake(suite, resultDenied, hsDur)
			if ok, n := s.deniedLog.allow(time.Now()); ok {
				log.Warn("handshake denied", "reason", reason, "err", err, "similar_suppressed", n)
			} else {
				log.Debug("handshake denied", "reason", reason, "err", err)
			}
		case reason == "resumption_refused":
			// Routine: the client reconnects with a full handshake.
			s.Metrics.handshake(suite, resultError, hsDur)
			log.Debug("session ticket not resumed; the client reconnects", "err", err)
		case reason == "timeout":
			result = resultTimeout
			s.Metrics.handshake(suite, resultTimeout, hsDur)
			log.Info("handshake timed out", "after", hsDur.Round(time.Millisecond))
		default:
			s.Metrics.handshake(suite, resultError, hsDur)
			log.Info("handshake failed", "err", err, "reason", reason)
		}
		s.Metrics.failure(reason)
		return nil, result
	}
	cs := sc.ConnectionState()
	id := cs.PeerIdentity
	log = log.With("identity", id, "suite", cs.CipherSuiteName, "pq", cs.PostQuantum)
	t.setIdentity(id)
	// Defence in depth: the ACL already ran inside the handshake. The
	// current ACL is checked: a reload during the handshake applies.
	if err := s.cur.Load().acl.Check(id); err != nil {
		s.Metrics.denied()
		s.Metrics.handshake(cs.CipherSuiteName, resultDenied, hsDur)
		log.Warn("access denied after handshake", "reason", err)
		return nil, resultDenied
	}
	s.Metrics.handshakeOK(cs, hsDur)
	if s.connSem != nil {
		select {
		case s.connSem <- struct{}{}:
			release = func() { <-s.connSem }
		case <-ctx.Done():
			return nil, result
		case <-s.done:
			return nil, result
		}
	}
	if front := s.front.Load(); front != nil {
		if !ValidHeaderValue(id) {
			log.Warn("identity cannot be sent in an HTTP header; closing")
			return nil, result
		}
		log.Info("connection open", "target", s.Target, "alpn", cs.NegotiatedProtocol)
		opened = true
		return &serverConn{start: start, log: log, sc: sc, release: release, front: front, ctx: ctx,
			id: id, alpn: cs.NegotiatedProtocol, lifetime: remaining(s.MaxConnLifetime, start),
			onBytes: s.Metrics.bytesFunc()}, resultOK
	}
	var header []byte
	if s.ProxyProtocol {
		header, err = AppendProxyV2(nil, ProxyInfo{
			Src: raw.RemoteAddr(), Dst: raw.LocalAddr(),
			Identity: id, Version: "TLSv1.2", Cipher: cs.CipherSuiteName,
		})
		if err != nil {
			log.Warn("cannot build PROXY header; closing", "err", err)
			return nil, result
		}
	}

	network, addr := SplitNetworkAddr(s.Target)
	dial := s.DialTarget
	if dial == nil {
		dial = targetDialer(network, addr).DialContext
	}
	dctx, cancel := context.WithTimeout(ctx, orDefault(s.ConnectTimeout, DefaultConnectTimeout))
	forget := t.addUntil(cancel)
	up, err = dial(dctx, network, addr)
	cancel()
	forget()
	if err != nil {
		up = nil
		log.Warn("cannot reach target; resetting the connection", "target", s.Target, "err", err)
		// No close_notify: the peer must see a failure, not an empty but
		// complete stream (a client would exit 0, a client-mode proxy
		// would count it as ok).
		if tc, ok := raw.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		raw.Close()
		return nil, "target_unreachable"
	}
	conn := up
	t.add(func() { conn.Close() })
	if header != nil {
		if _, err := up.Write(header); err != nil {
			log.Warn("writing PROXY header failed", "err", err)
			return nil, result
		}
	}
	log.Info("connection open", "target", s.Target)
	c := &serverConn{start: start, log: log, sc: sc, up: up, release: release}
	c.p = &pipe{a: sc, b: up, idle: s.IdleTimeout, onBytes: s.Metrics.bytesFunc(),
		lifetime: remaining(s.MaxConnLifetime, start), closeTimeout: s.CloseTimeout}
	opened = true
	return c, resultOK
}

// serveHTTP serves the connection in HTTP identity mode until it ends.
func (c *serverConn) serveHTTP() string {
	cc := &countConn{Conn: c.sc, onBytes: c.onBytes}
	var expired atomic.Bool
	if c.lifetime > 0 {
		t := time.AfterFunc(c.lifetime, func() {
			expired.Store(true)
			c.sc.Close()
		})
		defer t.Stop()
	}
	c.front.serveConn(c.ctx, cc, c.id, c.alpn, c.log)
	c.sc.Close()
	if c.release != nil {
		c.release()
	}
	result := resultOK
	attrs := []any{"bytes_up", cc.up.Load(), "bytes_down", cc.down.Load(),
		"duration", time.Since(c.start).Round(time.Millisecond)}
	if expired.Load() {
		result = "lifetime"
		attrs = append(attrs, "err", errLifetime)
	}
	c.log.Info("connection closed", attrs...)
	return result
}

// countConn counts the bytes read (up: client to target) and written.
type countConn struct {
	net.Conn
	up, down atomic.Int64
	onBytes  func(up bool, n int)
}

func (c *countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.up.Add(int64(n))
		if c.onBytes != nil {
			c.onBytes(true, n)
		}
	}
	return n, err
}

func (c *countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.down.Add(int64(n))
		if c.onBytes != nil {
			c.onBytes(false, n)
		}
	}
	return n, err
}
