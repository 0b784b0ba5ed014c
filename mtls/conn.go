package mtls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/handshake"
)

// closeNotifyTimeout bounds how long Close waits to send close_notify (and a
// failed handshake to send its alert).
const closeNotifyTimeout = 5 * time.Second

// Conn is a TLS 1.2 connection over a net.Conn. Read and Write may be called
// from different goroutines; the first Read or Write runs the handshake.
type Conn struct {
	// renegRequests counts renegotiation requests (ClientHello at a server,
	// HelloRequest at a client) since application data last arrived; each
	// gets a no_renegotiation warning, a flood of them a fatal refusal.
	renegRequests int

	conn     net.Conn
	isClient bool
	config   *Config
	// admitted, if set, is called once when the handshake ends (or the
	// connection closes first): the listener's admission of its source.
	admitted     func()
	admittedOnce sync.Once
	// canRedial: the connection is a dialer's, which reconnects when the
	// server refuses a resumption-only ClientHello (dial.go); retried: it
	// is that reconnection.
	canRedial, retried bool

	// handshake state, guarded by handshakeMutex
	handshakeMutex    sync.Mutex
	handshakeErr      error
	handshakeComplete atomic.Bool
	state             *handshake.State

	// fatal is the fatal alert error sent or received; it ends the connection.
	fatal atomic.Pointer[AlertError]

	writes     writeGate   // Close stops new Writes and cuts in-flight ones short
	closedByUs atomic.Bool // the underlying conn was closed after a failed handshake

	// read side, guarded by in
	in           halfConn
	rbuf         readBuffer
	versionSet   bool
	sawRecord    bool
	gotCCS       bool
	warnings     int // ignored warning alerts in a row
	emptyRecords int // zero-length application data records in a row

	// write side, guarded by out
	out             halfConn
	wbuf            writeBuffer
	closeNotifySent bool
	closeNotifyErr  error
}

// Client returns a client-side connection over conn; the handshake runs on
// first use or on Handshake.
func Client(conn net.Conn, config *Config) *Conn {
	return newConn(conn, config, true)
}

// Server returns a server-side connection over conn.
func Server(conn net.Conn, config *Config) *Conn {
	return newConn(conn, config, false)
}

func newConn(conn net.Conn, config *Config, isClient bool) *Conn {
	c := &Conn{conn: conn, config: config, isClient: isClient}
	c.in.version = versionTLS10
	c.out.version = versionTLS10
	return c
}

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines of the underlying connection.
// A write that times out leaves the connection unusable for writing.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the underlying connection.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the underlying connection. A
// write that times out leaves the connection unusable for writing.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// NetConn returns the underlying connection. Writing to or reading from it
// corrupts the TLS session.
func (c *Conn) NetConn() net.Conn { return c.conn }

// Read reads application data, running the handshake first if needed. After
// the peer's close_notify it returns io.EOF; a connection closed without
// close_notify is reported as a truncation (wrapping io.ErrUnexpectedEOF).
func (c *Conn) Read(b []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	c.in.Lock()
	defer c.in.Unlock()
	if err := c.awaitInput(); err != nil {
		return 0, err
	}
	n := copy(b, c.rbuf.input)
	c.rbuf.input = c.rbuf.input[n:]
	return n, nil
}

// WaitReadable blocks until Read can return without blocking: application
// data is buffered, or the connection reached the state in which Read
// returns an error (io.EOF after close_notify, a failure), which
// WaitReadable returns too. It runs the handshake first if needed, and
// honours the read deadline like Read.
//
// While the peer is quiet it holds no record buffer (on Linux, over the net
// package's TCP and Unix connections): a server with many idle
// connections can wait with WaitReadable and take a read buffer only once
// data is there.
func (c *Conn) WaitReadable() error {
	if err := c.Handshake(); err != nil {
		return err
	}
	c.in.Lock()
	defer c.in.Unlock()
	return c.awaitInput()
}

// InputPending reports whether a Read would find something to work on
// without the underlying connection becoming readable: application data or
// raw bytes of a record are buffered, or the read side has ended (Read
// returns its error at once). When it reports false the connection holds
// no read buffer (they go back to their pools), and a Read would block
// until NetConn has something to read. A caller that waits for many idle
// connections can thus wait on the underlying connection's readiness itself
// (as Linux's readiness notification does, with a shallow goroutine stack)
// and call Read only then. Call it from the goroutine that reads, after
// the handshake.
func (c *Conn) InputPending() bool {
	if !c.handshakeComplete.Load() {
		return true // Read runs the handshake first
	}
	c.in.Lock()
	defer c.in.Unlock()
	if c.fatal.Load() != nil || c.in.err != nil || len(c.rbuf.input) > 0 || len(c.rbuf.hand) > 0 ||
		c.rbuf.rpos < c.rbuf.rend {
		return true
	}
	c.rbuf.release()
	return false
}

// awaitInput reads records until application data is buffered. c.in must
// be held.
func (c *Conn) awaitInput() error {
	for len(c.rbuf.input) == 0 {
		if err := c.readRecord(); err != nil {
			return err
		}
		if len(c.rbuf.hand) > 0 {
			if err := c.handlePostHandshake(); err != nil {
				return err
			}
		}
	}
	c.renegRequests = 0
	return nil
}

// Write writes application data in records of at most 16 KiB, running the
// handshake first if needed.
func (c *Conn) Write(b []byte) (int, error) {
	if !c.writes.enter() {
		return 0, net.ErrClosed
	}
	defer c.writes.leave()

	if err := c.Handshake(); err != nil {
		return 0, err
	}
	c.out.Lock()
	defer c.out.Unlock()
	defer c.wbuf.release()
	if err := c.fatalErr(); err != nil {
		return 0, err
	}
	if c.out.err != nil {
		return 0, c.out.err
	}
	if c.closeNotifySent {
		return 0, errShutdown
	}
	n := 0
	for len(b) > 0 {
		m, err := c.writeBatchLocked(b)
		n += m
		b = b[m:]
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// maxWriteBatch is how many full records a large Write seals per write to
// the underlying connection (fewer system calls for bulk transfers).
const maxWriteBatch = 4

// writeBatchLocked seals up to maxWriteBatch application data records from
// the start of b, writes them at once and returns how many bytes of b they
// carry. c.out must be held.
func (c *Conn) writeBatchLocked(b []byte) (int, error) {
	if err := c.checkWriteSeqLocked(); err != nil {
		return 0, err
	}
	recs := min(maxWriteBatch, (len(b)+maxPlaintext-1)/maxPlaintext)
	if recs == 1 {
		c.wbuf.ensure(len(b))
	} else {
		c.wbuf.ensure(recs * (maxPlaintext + recordHeaderLen + maxSealOverhead))
	}
	buf := c.wbuf.buf[:0]
	batch := 0
	for i := 0; i < recs; i++ {
		if i > 0 && c.out.spare() <= 1 {
			break // the next call refuses to go on
		}
		m := min(len(b)-batch, maxPlaintext)
		buf = c.out.seal(buf, recordTypeApplicationData, b[batch:batch+m])
		batch += m
	}
	c.wbuf.buf = buf
	if _, err := c.conn.Write(buf); err != nil {
		c.out.err = permanent(err)
		return 0, c.out.err
	}
	return batch, nil
}

// Close sends close_notify (if the handshake completed; bounded by a short
// write deadline) and closes the underlying connection.
func (c *Conn) Close() error {
	first, busy := c.writes.close()
	if !first {
		return net.ErrClosed
	}
	c.endAdmission()
	if busy {
		// A Write is in flight: Close is being used to break it; do not
		// wait for it to send close_notify.
		return c.closeConn()
	}
	var alertErr error
	if c.handshakeComplete.Load() {
		if err := c.closeNotify(); err != nil {
			alertErr = fmt.Errorf("mtls: failed to send close_notify (the connection was closed anyway): %w", err)
		}
	}
	if err := c.closeConn(); err != nil {
		return err
	}
	return alertErr
}

func (c *Conn) closeConn() error {
	err := c.conn.Close()
	if c.closedByUs.Load() {
		return nil
	}
	return err
}

var errEarlyCloseWrite = errors.New("mtls: CloseWrite called before the handshake completed")

// CloseWrite sends close_notify: the peer reads io.EOF, while this side can
// still Read. Further Writes fail.
func (c *Conn) CloseWrite() error {
	if !c.handshakeComplete.Load() {
		return errEarlyCloseWrite
	}
	return c.closeNotify()
}

func (c *Conn) closeNotify() error {
	c.out.Lock()
	defer c.out.Unlock()
	if !c.closeNotifySent {
		if c.fatal.Load() == nil {
			c.SetWriteDeadline(time.Now().Add(closeNotifyTimeout))
			c.closeNotifyErr = c.sendAlertLocked(alertLevelWarning, ciphersuite.AlertCloseNotify)
			// Any later Write fails.
			c.SetWriteDeadline(time.Now())
		}
		c.closeNotifySent = true
	}
	return c.closeNotifyErr
}

// Handshake runs the handshake if it has not run yet. Most uses need not
// call it: the first Read or Write does.
func (c *Conn) Handshake() error { return c.HandshakeContext(context.Background()) }

// HandshakeContext runs the handshake if it has not run yet. Cancelling ctx
// interrupts a blocked handshake (the connection is then unusable). Without
// a deadline in ctx, Config.HandshakeTimeout applies.
func (c *Conn) HandshakeContext(ctx context.Context) error {
	if c.handshakeComplete.Load() {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok && c.config != nil && c.config.HandshakeTimeout >= 0 {
		d := c.config.HandshakeTimeout
		if d == 0 {
			d = DefaultHandshakeTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	c.handshakeMutex.Lock()
	defer c.handshakeMutex.Unlock()
	if c.handshakeErr != nil {
		return c.handshakeErr
	}
	if c.handshakeComplete.Load() {
		return nil
	}

	// Only the goroutine that runs the handshake arms the interrupt, so a
	// context expiring while waiting for another handshake never touches a
	// connection that completed.
	// No goroutine waits for ctx: the interrupt runs only if ctx ends
	// (context.AfterFunc), which keeps a handshake's cost to the work
	// itself.
	stop := func() error { return nil }
	if ctx.Done() != nil {
		fired := make(chan struct{})
		stopAfter := context.AfterFunc(ctx, func() {
			// Interrupt blocked I/O; the handshake then fails.
			c.conn.SetDeadline(time.Unix(1, 0))
			close(fired)
		})
		var once sync.Once
		var ctxErr error
		stop = func() error {
			once.Do(func() {
				if !stopAfter() {
					// The interrupt started: wait until it has set the
					// deadline, so that it cannot touch the connection
					// after the handshake returned.
					<-fired
					ctxErr = ctx.Err()
				}
			})
			return ctxErr
		}
		defer stop()
	}

	c.in.Lock()
	st, err := c.runHandshake(ctx)
	c.rbuf.release()
	c.in.Unlock()
	c.endAdmission()
	c.out.Lock()
	c.wbuf.flight, c.wbuf.pending = nil, nil // the flights are flushed
	c.out.Unlock()
	if ctxErr := stop(); ctxErr != nil {
		err = ctxErr
	}
	if err != nil {
		c.handshakeErr = c.handshakeFailed(err)
		return c.handshakeErr
	}
	// The record ciphers hold the traffic keys; nothing needs the master
	// secret any more (the key log, if any, has been written). Keep secrets
	// in memory only as long as needed.
	clear(st.MasterSecret)
	st.MasterSecret = nil
	c.state = st
	c.handshakeComplete.Store(true)
	if l := c.logger(); l != nil {
		l.Debug("mtls: handshake complete", "client", c.isClient, "suite", st.Suite.Name,
			"resumed", st.DidResume, "pq", st.PostQuantum)
	}
	return nil
}

// endAdmission tells the listener that admitted c that its handshake ended.
func (c *Conn) endAdmission() {
	if c.admitted != nil {
		c.admittedOnce.Do(c.admitted)
	}
}

func (c *Conn) runHandshake(ctx context.Context) (*handshake.State, error) {
	if c.config == nil {
		return nil, errors.New("mtls: nil Config")
	}
	rl := (*recordLayer)(c)
	if c.isClient {
		hc, err := c.config.clientHandshakeConfig()
		if err != nil {
			return nil, err
		}
		key, err := c.clientSessionBefore(hc)
		if err != nil {
			return nil, err
		}
		hc.ResumptionOnly = c.canRedial
		st, err := handshake.Client(ctx, rl, hc)
		c.clientSessionAfter(key, hc, st, err)
		return st, err
	}
	hc, err := c.config.serverHandshakeConfig(ctx, c.config.source(c.conn.RemoteAddr()))
	if err != nil {
		return nil, err
	}
	return handshake.Server(ctx, rl, hc)
}

// handshakeFailed sends the alert of a local handshake failure (unless the
// record layer already sent or received one), closes the underlying
// connection and returns the error the connection keeps.
func (c *Conn) handshakeFailed(err error) error {
	var ae *AlertError
	if errors.As(err, &ae) && !ae.Remote && c.fatal.Load() == nil {
		c.conn.SetWriteDeadline(time.Now().Add(closeNotifyTimeout))
		c.sendFatal(ae)
	}
	if fe := c.fatal.Load(); fe != nil && ae == nil {
		err = fe
	}
	if l := c.logger(); l != nil {
		l.Debug("mtls: handshake failed", "client", c.isClient, "err", err)
	}
	c.closedByUs.Store(true)
	c.conn.Close()
	return err
}

func (c *Conn) logger() *slog.Logger {
	if c.config == nil {
		return nil
	}
	return c.config.Logger
}

// ConnectionState returns details about the connection.
func (c *Conn) ConnectionState() ConnectionState {
	c.handshakeMutex.Lock()
	defer c.handshakeMutex.Unlock()
	cs := ConnectionState{HandshakeComplete: c.handshakeComplete.Load()}
	st := c.state
	if st == nil {
		return cs
	}
	cs.Version = st.Version
	if st.Suite != nil {
		cs.CipherSuite = st.Suite.ID
		cs.CipherSuiteName = st.Suite.Name
		cs.KeyExchange = st.Suite.KX
	}
	cs.ExtendedMasterSecret = st.ExtendedMasterSecret
	cs.ServerName = st.ServerName
	cs.NegotiatedProtocol = st.NegotiatedProtocol
	cs.PeerIdentity = st.PeerIdentity
	cs.LocalIdentity = st.LocalIdentity
	cs.PSKIdentityHint = st.PSKIdentityHint
	cs.PermitDay = st.PermitDay
	// tls-unique is the first Finished of the handshake: the client's, or
	// the server's in a resumed one.
	cs.TLSUnique = append([]byte(nil), st.ClientFinished...)
	if st.DidResume {
		cs.TLSUnique = append([]byte(nil), st.ServerFinished...)
	}
	cs.DidResume = st.DidResume
	cs.PostQuantum = st.PostQuantum
	cs.ResumptionRetried = c.retried
	return cs
}
