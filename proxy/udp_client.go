package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milagro-go/milagro/dtls"
)

// UDPClient originates DTLS: it reads plain datagrams on a local UDP socket
// (normally on 127.0.0.1) and forwards each local sender's datagrams over
// its own DTLS session to Target, a UDP-server-mode proxy or any DTLS
// server; replies go back to that sender. Set the fields, call SetConfig,
// then Serve.
type UDPClient struct {
	// Target is the DTLS server's HOST:PORT.
	Target string
	// IdleTimeout ends a session with no datagram either way
	// (DefaultUDPIdleTimeout when 0).
	IdleTimeout time.Duration
	// MaxConns caps concurrent sessions; datagrams of further senders are
	// dropped (UDP has no backlog). 0 means no cap.
	MaxConns int
	// Queue is how many datagrams a session buffers while its handshake
	// runs (default 64); more are dropped.
	Queue int
	// Logger gets one line per session; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, if set, records metrics.
	Metrics *Metrics

	cur atomic.Pointer[dtls.Config]

	mu       sync.Mutex
	sessions map[string]*udpClientSession
	wg       sync.WaitGroup
}

type udpClientSession struct {
	in   chan []byte
	done chan struct{}
}

// SetConfig installs the DTLS client configuration for new sessions.
func (c *UDPClient) SetConfig(cfg *dtls.Config) error {
	if cfg == nil {
		return errors.New("proxy: nil dtls.Config")
	}
	c.cur.Store(cfg)
	return nil
}

func (c *UDPClient) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// ActiveConns returns the number of live sessions.
func (c *UDPClient) ActiveConns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}

// Serve reads datagrams from pc until ctx is done or pc is closed, then
// closes every session and returns.
func (c *UDPClient) Serve(ctx context.Context, pc net.PacketConn) error {
	if c.cur.Load() == nil {
		return errors.New("proxy: UDPClient.Serve before SetConfig")
	}
	if c.Target == "" {
		return errors.New("proxy: UDPClient.Target is empty")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		c.wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Now()) })
	defer stop()
	c.mu.Lock()
	if c.sessions == nil {
		c.sessions = make(map[string]*udpClientSession)
	}
	c.mu.Unlock()
	buf := make([]byte, maxDatagram+1)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if n > maxDatagram {
			continue
		}
		d := append([]byte(nil), buf[:n]...)
		key := from.String()
		c.mu.Lock()
		s := c.sessions[key]
		if s == nil {
			if c.MaxConns > 0 && len(c.sessions) >= c.MaxConns {
				c.mu.Unlock()
				c.logger().Warn("session limit reached; datagram dropped", "from", key)
				continue
			}
			q := c.Queue
			if q <= 0 {
				q = 64
			}
			s = &udpClientSession{in: make(chan []byte, q), done: make(chan struct{})}
			c.sessions[key] = s
			c.wg.Add(1)
			go c.run(ctx, pc, from, key, s)
		}
		c.mu.Unlock()
		select {
		case s.in <- d:
		case <-s.done:
		default: // queue full: dropped, as a congested link would
		}
	}
}

func (c *UDPClient) run(ctx context.Context, pc net.PacketConn, from net.Addr, key string, s *udpClientSession) {
	start := time.Now()
	log := c.logger().With("mode", "udp-client", "remote", key)
	c.Metrics.connOpen()
	result := resultError
	defer func() {
		c.Metrics.connClose(result)
		c.mu.Lock()
		delete(c.sessions, key)
		c.mu.Unlock()
		close(s.done)
		c.wg.Done()
	}()
	var (
		dc  *dtls.Conn
		err error
	)
	onShortStack(func() { dc, err = dtls.DialContext(ctx, "udp", c.Target, c.cur.Load()) })
	hsDur := time.Since(start)
	if err != nil {
		result = resultError
		if errors.Is(err, context.DeadlineExceeded) || isTimeoutErr(err) {
			result = resultTimeout
		}
		c.Metrics.handshake("", result, hsDur)
		log.Warn("cannot open DTLS session to target", "target", c.Target, "err", err)
		return
	}
	defer dc.Close()
	stop := context.AfterFunc(ctx, func() { dc.Close() })
	defer stop()
	cs := dc.ConnectionState()
	suite := dtls.CipherSuiteName(cs.CipherSuite)
	c.Metrics.handshake(suite, resultOK, hsDur)
	log = log.With("identity", cs.PeerIdentity, "suite", suite)
	log.Info("session open", "target", c.Target)
	local := &replyConn{pc: pc, to: from, in: s.in, done: make(chan struct{})}
	p := &datagramPipe{peer: local, target: dc, idle: orDefault(c.IdleTimeout, DefaultUDPIdleTimeout),
		onBytes: c.Metrics.bytesFunc()}
	err = p.run()
	result = resultOK
	attrs := []any{"datagrams_up", p.nUp.Load(), "datagrams_down", p.nDown.Load(),
		"duration", time.Since(start).Round(time.Millisecond)}
	if err != nil {
		result = "closed_with_error"
		attrs = append(attrs, "err", err)
	}
	log.Info("session closed", attrs...)
}

// replyConn is one local sender seen as a net.Conn: Read takes its queued
// datagrams, Write answers it on the shared socket.
type replyConn struct {
	pc   net.PacketConn
	to   net.Addr
	in   chan []byte
	mu   sync.Mutex
	dl   time.Time
	done chan struct{}
	once sync.Once
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (r *replyConn) Read(b []byte) (int, error) {
	r.mu.Lock()
	dl := r.dl
	r.mu.Unlock()
	var tc <-chan time.Time
	if !dl.IsZero() {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		tc = t.C
	}
	select {
	case d := <-r.in:
		return copy(b, d), nil
	case <-tc:
		return 0, timeoutErr{}
	case <-r.done:
		return 0, net.ErrClosed
	}
}

func (r *replyConn) Write(b []byte) (int, error) { return r.pc.WriteTo(b, r.to) }
func (r *replyConn) Close() error {
	r.once.Do(func() { close(r.done) })
	return nil
}
func (r *replyConn) LocalAddr() net.Addr  { return r.pc.LocalAddr() }
func (r *replyConn) RemoteAddr() net.Addr { return r.to }
func (r *replyConn) SetDeadline(t time.Time) error {
	return r.SetReadDeadline(t)
}
func (r *replyConn) SetReadDeadline(t time.Time) error {
	r.mu.Lock()
	r.dl = t
	r.mu.Unlock()
	return nil
}
func (r *replyConn) SetWriteDeadline(time.Time) error { return nil }
