package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/milagro-go/milagro/dtls"
)

// UDP sidecar: DTLS (package dtls: Milagro P2P or static PSK) on one side,
// plain UDP datagrams on the other, one session per peer.

// maxDatagram is the largest payload forwarded: a DTLS record carries at
// most 2^14 bytes of plaintext.
const maxDatagram = 1 << 14

// DefaultUDPIdleTimeout ends a UDP session with no datagram either way.
const DefaultUDPIdleTimeout = 2 * time.Minute

// UDPServer terminates DTLS: it admits authenticated peers that pass the
// ACL and forwards each peer's datagrams to Target from a UDP socket of its
// own, so the service's replies go back to that peer only. Set the fields,
// call SetConfig, then Serve.
type UDPServer struct {
	// Target is the plain UDP service's HOST:PORT.
	Target string
	// IdleTimeout ends a session with no datagram either way
	// (DefaultUDPIdleTimeout when 0).
	IdleTimeout time.Duration
	// MaxConns caps concurrent sessions; 0 means no cap.
	MaxConns int
	// Logger gets one line per session; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, if set, records metrics.
	Metrics *Metrics

	cur  atomic.Pointer[udpServerState]
	lnMu sync.Mutex
	lns  map[*dtls.Listener]struct{}
	loop
}

type udpServerState struct {
	cfg *dtls.Config // the caller's Config with VerifyPeerIdentity from acl
	acl *ACL
}

// SetConfig installs the DTLS configuration and ACL for new handshakes
// (safe at any time, for a reload). cfg is not modified: a clone gets a
// VerifyPeerIdentity that applies acl (then cfg's own), so a denied peer
// fails its handshake with a fatal alert and never reaches the target.
func (s *UDPServer) SetConfig(cfg *dtls.Config, acl *ACL) error {
	if cfg == nil {
		return errors.New("proxy: nil dtls.Config")
	}
	if acl == nil {
		return ErrNoACL
	}
	c := cfg.Clone()
	inner := cfg.VerifyPeerIdentity
	m := s.Metrics
	c.VerifyPeerIdentity = func(id string) error {
		if err := acl.Check(id); err != nil {
			m.denied()
			return err
		}
		if inner != nil {
			return inner(id)
		}
		return nil
	}
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	for ln := range s.lns {
		if err := ln.SetConfig(c); err != nil {
			return err
		}
	}
	s.cur.Store(&udpServerState{cfg: c, acl: acl})
	return nil
}

func (s *UDPServer) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// ListenAndServe listens for DTLS on the UDP address addr and serves.
func (s *UDPServer) ListenAndServe(ctx context.Context, addr string) error {
	st := s.cur.Load()
	if st == nil {
		return errors.New("proxy: UDPServer.Serve before SetConfig")
	}
	ln, err := dtls.Listen("udp", addr, st.cfg)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve accepts DTLS peers on ln until Shutdown, or until ctx is done (a
// hard stop). The listener gets the Config of SetConfig.
func (s *UDPServer) Serve(ctx context.Context, ln *dtls.Listener) error {
	st := s.cur.Load()
	if st == nil {
		return errors.New("proxy: UDPServer.Serve before SetConfig")
	}
	if s.Target == "" {
		return errors.New("proxy: UDPServer.Target is empty")
	}
	if err := ln.SetConfig(st.cfg); err != nil {
		return err
	}
	s.lnMu.Lock()
	if s.lns == nil {
		s.lns = make(map[*dtls.Listener]struct{})
	}
	s.lns[ln] = struct{}{}
	s.lnMu.Unlock()
	defer func() {
		s.lnMu.Lock()
		delete(s.lns, ln)
		s.lnMu.Unlock()
	}()
	s.loop.maxConns = s.MaxConns
	return s.serve(ctx, ln, s.logger(), s.handle)
}

// Shutdown stops accepting, lets live sessions end until ctx is done, then
// closes them.
func (s *UDPServer) Shutdown(ctx context.Context) error { return s.shutdown(ctx) }

// ActiveConns returns the number of sessions being handled.
func (s *UDPServer) ActiveConns() int { return s.Active() }

func (s *UDPServer) handle(ctx context.Context, raw net.Conn, t *tracked) {
	start := time.Now()
	log := s.logger().With("mode", "udp-server", "remote", raw.RemoteAddr().String())
	s.Metrics.connOpen()
	result := resultError
	defer func() { s.Metrics.connClose(result) }()
	dc, ok := raw.(*dtls.Conn)
	if !ok {
		log.Error("not a DTLS connection")
		return
	}
	st := s.cur.Load()
	var err error
	onShortStack(func() { err = dc.HandshakeContext(ctx) })
	hsDur := time.Since(start)
	if err != nil {
		var de *DeniedError
		switch {
		case errors.As(err, &de):
			result = resultDenied
			s.Metrics.handshake("", resultDenied, hsDur)
			log.Warn("access denied", "identity", de.ID, "reason", de.Reason)
		case errors.Is(err, context.DeadlineExceeded) || isTimeoutErr(err):
			result = resultTimeout
			s.Metrics.handshake("", resultTimeout, hsDur)
			log.Info("handshake timed out", "after", hsDur.Round(time.Millisecond))
		default:
			s.Metrics.handshake("", resultError, hsDur)
			log.Info("handshake failed", "err", err)
		}
		return
	}
	cs := dc.ConnectionState()
	suite := dtls.CipherSuiteName(cs.CipherSuite)
	id := cs.PeerIdentity
	log = log.With("identity", id, "suite", suite)
	if err := st.acl.Check(id); err != nil { // defence in depth
		result = resultDenied
		s.Metrics.denied()
		s.Metrics.handshake(suite, resultDenied, hsDur)
		log.Warn("access denied after handshake", "reason", err)
		return
	}
	s.Metrics.handshake(suite, resultOK, hsDur)
	up, err := net.Dial("udp", s.Target)
	if err != nil {
		result = "target_unreachable"
		log.Warn("cannot reach target; closing", "target", s.Target, "err", err)
		return
	}
	t.add(func() { up.Close() })
	defer up.Close()
	log.Info("session open", "target", s.Target)
	p := &datagramPipe{peer: dc, target: up, idle: orDefault(s.IdleTimeout, DefaultUDPIdleTimeout),
		onBytes: s.Metrics.bytesFunc()}
	err = p.run()
	result = resultOK
	attrs := []any{"datagrams_up", p.nUp.Load(), "datagrams_down", p.nDown.Load(),
		"bytes_up", p.up.Load(), "bytes_down", p.down.Load(), "duration", time.Since(start).Round(time.Millisecond)}
	if err != nil {
		result = "closed_with_error"
		attrs = append(attrs, "err", err)
	}
	log.Info("session closed", attrs...)
}

// datagramPipe forwards datagrams both ways between the accepted side
// (peer) and the target side until either fails or nothing moves for idle;
// "up" is peer to target.
type datagramPipe struct {
	peer    net.Conn
	target  net.Conn
	idle    time.Duration
	onBytes func(up bool, n int)

	last       atomic.Int64 // unix nanos of the last datagram
	up, down   atomic.Int64
	nUp, nDown atomic.Int64
	errIdle    error
	stopOnce   sync.Once
}

var errIdleTimeout = errors.New("idle timeout")

// run returns nil when the peer closed or the session went idle.
func (p *datagramPipe) run() error {
	p.last.Store(time.Now().UnixNano())
	errs := make(chan error, 2)
	go func() { errs <- p.copy(p.target, p.peer, true) }()
	go func() { errs <- p.copy(p.peer, p.target, false) }()
	err := <-errs
	p.stopOnce.Do(func() {
		p.peer.Close()
		p.target.Close()
	})
	<-errs
	if errors.Is(err, errIdleTimeout) || errors.Is(err, net.ErrClosed) || isEOF(err) {
		return nil
	}
	return err
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }

func (p *datagramPipe) copy(dst, src net.Conn, up bool) error {
	buf := make([]byte, maxDatagram+1)
	for {
		_ = src.SetReadDeadline(time.Unix(0, p.last.Load()).Add(p.idle))
		n, err := src.Read(buf)
		if err != nil {
			if isTimeoutErr(err) {
				if time.Since(time.Unix(0, p.last.Load())) >= p.idle {
					return errIdleTimeout
				}
				continue
			}
			if !up && errors.Is(err, syscall.ECONNREFUSED) {
				continue // the service is not (yet) listening: ICMP, not fatal
			}
			return err
		}
		if n > maxDatagram {
			continue // too large for one DTLS record: dropped, as a router would
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			if up && errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			return err
		}
		p.last.Store(time.Now().UnixNano())
		if up {
			p.up.Add(int64(n))
			p.nUp.Add(1)
		} else {
			p.down.Add(int64(n))
			p.nDown.Add(1)
		}
		if p.onBytes != nil {
			p.onBytes(up, n)
		}
	}
}
