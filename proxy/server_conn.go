package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// handle serves one accepted connection in two phases. open (admission,
// handshake, ACL, dial) runs on a goroutine of its own that ends before
// the forwarding starts, so the goroutine that then waits on an idle
// connection never held open's frames: its stack stays small (an idle
// connection's cost is mostly its two goroutine stacks).
func (s *Server) handle(ctx context.Context, raw net.Conn, t *tracked) {
	s.Metrics.connOpen()
	result := resultError
	var c *serverConn
	onShortStack(func() { c, result = s.open(ctx, raw, t) })
	if c != nil {
		result = c.forward()
	}
	s.Metrics.connClose(result)
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
}

// forward runs the pipe until both directions end, closes both sides and
// returns the connection's result for the metrics.
func (c *serverConn) forward() string {
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

	source := sourceAddr(raw.RemoteAddr())
	s.guardMu.Lock()
	gate := s.gate
	s.guardMu.Unlock()
	admitRelease, admitted := gate.Admit(source)
	if !admitted {
		// This address's CS proofs kept failing: closed before any work.
		s.Metrics.handshake("", resultBusy, 0)
		raw.Close()
		return nil, resultBusy
	}
	defer admitRelease()
	if !s.hs.admit(source) {
		s.Metrics.handshake("", resultBusy, 0)
		if ok, n := s.deniedLog.allow(time.Now()); ok {
			log.Warn("too many handshakes in progress; connection closed", "pending", s.hs.pending(), "suppressed", n)
		}
		raw.Close()
		return nil, resultBusy
	}
	hsDone := false
	releaseHS := func() {
		if !hsDone {
			hsDone = true
			s.hs.release(source)
		}
	}
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

	hctx, cancel := context.WithTimeout(ctx, orDefault(s.HandshakeTimeout, DefaultHandshakeTimeout))
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
		switch {
		case errors.As(err, &de):
			result = resultDenied
			s.Metrics.handshake("", resultDenied, hsDur)
			log.Warn("access denied", "identity", de.ID, "reason", de.Reason)
		case reason == "denied":
			// A proof that does not verify, a lockout, a replay, a
			// permit or clock refusal: denied, and logged at a bounded
			// rate (a flood of forged hellos must not flood the log).
			result = resultDenied
			s.Metrics.handshake("", resultDenied, hsDur)
			if ok, n := s.deniedLog.allow(time.Now()); ok {
				log.Warn("handshake denied", "err", err, "similar_suppressed", n)
			} else {
				log.Debug("handshake denied", "err", err)
			}
		case reason == "timeout":
			result = resultTimeout
			s.Metrics.handshake("", resultTimeout, hsDur)
			log.Info("handshake timed out", "after", hsDur.Round(time.Millisecond))
		default:
			s.Metrics.handshake("", resultError, hsDur)
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
	if s.HTTPIdentityHeader != "" && !ValidHeaderValue(id) {
		log.Warn("identity cannot be sent in an HTTP header; closing")
		return nil, result
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
	if name := s.HTTPIdentityHeader; name != "" {
		c.upCopy = httpIdentity(c.p, name, id, s.AllowConnect)
	}
	opened = true
	return c, resultOK
}
