package proxy

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Buffer sizes. An idle proxied connection holds no buffer: a plain TCP
// source is waited on without any buffer (waitReadable, Linux), an mtls
// source with its WaitReadable; a pooled bigBufSize buffer is taken only
// once data has arrived and is returned before the next blocking wait.
// The small buffer serves other sources.
const (
	bigBufSize   = 64 << 10
	smallBufSize = 1 << 10
)

var bigBufPool = sync.Pool{New: func() any { b := make([]byte, bigBufSize); return &b }}

// bigBufGets counts big buffers taken (tests check that idle or finished
// connections take none).
var bigBufGets atomic.Int64

func getBigBuf() *[]byte {
	bigBufGets.Add(1)
	return bigBufPool.Get().(*[]byte)
}

var smallBufPool = sync.Pool{New: func() any { b := make([]byte, smallBufSize); return &b }}

// closeWriter is the half-close both *net.TCPConn and *mtls.Conn provide.
type closeWriter interface{ CloseWrite() error }

// pipe forwards between a (the accepted side) and b (the dialled side).
type pipe struct {
	a, b     net.Conn
	idle     time.Duration
	last     atomic.Int64 // unix nanoseconds of the last successful read
	up, down atomic.Int64 // bytes a→b and b→a
	onBytes  func(up bool, n int)

	// lifetime, if set, ends the connection that long after run starts;
	// closeTimeout, if set, ends it that long after one direction finished
	// (half-close) if the other has not finished by then.
	lifetime     time.Duration
	closeTimeout time.Duration
	timersMu     sync.Mutex
	timers       []*time.Timer
	expired      atomic.Bool

	closeOnce sync.Once
	idled     atomic.Bool
	errOnce   sync.Once
	firstErr  error
}

// fail ends the connection after an error. Plain TCP sides are reset
// (RST, not FIN) so that a service never takes a stream cut short - for
// instance an mtls peer's truncation without close_notify - for a complete
// one.
func (p *pipe) fail(err error) {
	p.errOnce.Do(func() { p.firstErr = err })
	for _, c := range []net.Conn{p.a, p.b} {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
	p.closeBoth()
}

func (p *pipe) closeBoth() {
	p.closeOnce.Do(func() {
		p.a.Close()
		p.b.Close()
	})
}

func (p *pipe) touch() { p.last.Store(time.Now().UnixNano()) }

// run forwards until both directions are done or one fails, then closes both
// connections. upCopy, if set, replaces the a→b copy (HTTP identity mode).
// It returns the first error that was not a clean EOF.
func (p *pipe) run(upCopy func(dst io.Writer, src io.Reader) error) error {
	p.touch()
	var (
		timerMu sync.Mutex
		timer   *time.Timer
	)
	if p.idle > 0 {
		check := func() {
			timerMu.Lock()
			defer timerMu.Unlock()
			since := time.Since(time.Unix(0, p.last.Load()))
			if since >= p.idle {
				p.idled.Store(true)
				p.closeBoth()
				return
			}
			timer.Reset(p.idle - since)
		}
		timerMu.Lock()
		timer = time.AfterFunc(p.idle, check)
		timerMu.Unlock()
	}
	if p.lifetime > 0 {
		p.addTimer(p.lifetime, func() {
			p.expired.Store(true)
			p.closeBoth()
		})
	}
	errc := make(chan struct{})
	go func() {
		defer close(errc)
		p.direction(p.b, p.a, false, nil)
	}()
	p.direction(p.a, p.b, true, upCopy)
	<-errc
	p.closeBoth()
	timerMu.Lock()
	if timer != nil {
		timer.Stop()
	}
	timerMu.Unlock()
	p.timersMu.Lock()
	for _, t := range p.timers {
		t.Stop()
	}
	p.timers = nil
	p.timersMu.Unlock()
	if p.idled.Load() {
		return errIdle
	}
	if p.expired.Load() {
		return errLifetime
	}
	p.errOnce.Do(func() {})
	return p.firstErr
}

var (
	errIdle     = errors.New("idle timeout")
	errLifetime = errors.New("maximum connection lifetime reached")
)

func (p *pipe) addTimer(d time.Duration, f func()) {
	p.timersMu.Lock()
	p.timers = append(p.timers, time.AfterFunc(d, f))
	p.timersMu.Unlock()
}

// direction copies src to dst; on a clean EOF it half-closes dst. On an
// error it closes both so the other direction ends too.
func (p *pipe) direction(src, dst net.Conn, up bool, custom func(dst io.Writer, src io.Reader) error) {
	var err error
	cw := &countingWriter{w: dst, p: p, up: up}
	switch {
	case custom != nil:
		err = custom(cw, &touchReader{r: src, p: p})
	default:
		// The waited copy runs from this frame, not from under
		// copyLowMem's: the goroutine parks there for as long as the
		// connection is idle, and its stack must stay within its
		// initial 2 KiB (see waitedCopy).
		if w := newWaitedCopy(cw, src, p.touch); w != nil {
			err = w.run()
		} else {
			err = p.copy(cw, src)
		}
	}
	if err != nil {
		p.fail(err)
		return
	}
	if c, ok := dst.(closeWriter); ok {
		if err := c.CloseWrite(); err == nil {
			if p.closeTimeout > 0 {
				p.addTimer(p.closeTimeout, p.closeBoth)
			}
			return
		}
	}
	p.closeBoth() // no half-close possible: end the connection
}

type countingWriter struct {
	w  io.Writer
	p  *pipe
	up bool
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	if n > 0 {
		if c.up {
			c.p.up.Add(int64(n))
		} else {
			c.p.down.Add(int64(n))
		}
		if c.p.onBytes != nil {
			c.p.onBytes(c.up, n)
		}
	}
	return n, err
}

type touchReader struct {
	r io.Reader
	p *pipe
}

func (t *touchReader) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if n > 0 {
		t.p.touch()
	}
	return n, err
}

// copy moves src to dst holding a big buffer only while data flows. It
// returns nil on EOF.
func (p *pipe) copy(dst io.Writer, src net.Conn) error {
	return copyLowMem(dst, src, p.touch)
}

// copyLowMem copies src to dst until EOF (then returns nil) without holding
// a buffer while src has nothing to say.
//
//   - A plain TCP source whose last read filled the big buffer is read on
//     at once without blocking (nonBlockingReader, Linux): a bulk stream
//     costs one system call per buffer, and only when nothing is there
//     does the buffer go back before the wait.
//   - A plain TCP source (waitReadable, Linux) and an mtls connection
//     (WaitReadable, which decrypts the next record without holding a
//     buffer across the wait) are waited on first, then read with a pooled
//     big buffer, which goes back to the pool before the next wait. After
//     a large read from an mtls connection, the rest of what it has already
//     buffered and decrypted is drained without blocking, by reading with a
//     deadline in the past (a timeout leaves an mtls connection usable),
//     and both are forwarded with one write.
//   - Any other connection with read deadlines is read into a small buffer;
//     if that filled it, it is drained likewise.
//   - Any other reader (an HTTP body) is read into the small buffer, which is
//     forwarded, then with the big buffer.
func copyLowMem(dst io.Writer, src io.Reader, touch func()) error {
	if touch == nil {
		touch = func() {}
	}
	if w := newWaitedCopy(dst, src, touch); w != nil {
		return w.run()
	}
	var dl interface{ SetReadDeadline(time.Time) error }
	if c, ok := src.(net.Conn); ok {
		dl = c
	}
	return copyBuffered(dst, src, dl, touch)
}

// newWaitedCopy returns the waited copy of src to dst, or nil when src
// cannot be waited on without a buffer.
func newWaitedCopy(dst io.Writer, src io.Reader, touch func()) *waitedCopy {
	c, ok := src.(net.Conn)
	if !ok {
		return nil
	}
	w := &waitedCopy{dst: dst, src: src, conn: c, touch: touch}
	if rw, ok := c.(readableWaiter); ok {
		w.wait, w.dl = rw.WaitReadable, c
		w.shallowMTLS(c)
	} else if w.wait = readinessWaiter(c); w.wait == nil {
		return nil
	} else {
		w.aside = true
	}
	return w
}

// copyBuffered is copyLowMem for a source that cannot be waited on
// without a buffer (kept out of copyLowMem's frame, which stays on the
// stack of every waiting connection).
//
//go:noinline
func copyBuffered(dst io.Writer, src io.Reader, dl interface{ SetReadDeadline(time.Time) error }, touch func()) error {
	for {
		sp := smallBufPool.Get().(*[]byte)
		n, err := src.Read(*sp)
		full := n == len(*sp)
		if n > 0 {
			touch()
		}
		if dl != nil && full && err == nil {
			bp := getBigBuf()
			copy(*bp, (*sp)[:n])
			smallBufPool.Put(sp)
			m, derr := drain(src, dl, (*bp)[n:])
			_, werr := dst.Write((*bp)[:n+m])
			bigBufPool.Put(bp)
			if werr != nil {
				return werr
			}
			if derr != nil {
				return eofNil(derr)
			}
			continue
		}
		if n > 0 {
			if _, werr := dst.Write((*sp)[:n]); werr != nil {
				smallBufPool.Put(sp)
				return werr
			}
		}
		smallBufPool.Put(sp)
		if err != nil {
			return eofNil(err)
		}
		if !full {
			continue
		}
		bp := getBigBuf()
		n, err = src.Read(*bp)
		if n > 0 {
			touch()
			if _, werr := dst.Write((*bp)[:n]); werr != nil {
				bigBufPool.Put(bp)
				return werr
			}
		}
		bigBufPool.Put(bp)
		if err != nil {
			return eofNil(err)
		}
	}
}

// readableWaiter is implemented by *mtls.Conn: WaitReadable blocks until a
// Read would not block, holding no buffer meanwhile.
type readableWaiter interface{ WaitReadable() error }

// inputPender is implemented by *mtls.Conn: InputPending reports whether
// Read has something buffered to work on (else it holds no buffer, and
// waiting on the underlying connection is waiting for the next record).
type inputPender interface {
	InputPending() bool
	NetConn() net.Conn
}

// drainAfter is the read size from which a waited-on source with deadlines
// is drained before writing: a full record's worth of plaintext suggests
// more is already buffered.
const drainAfter = 8 << 10

// pastDeadline makes reads return at once with a timeout.
var pastDeadline = time.Unix(1, 0)

// drain reads what src can return without blocking into b.
func drain(src io.Reader, dl interface{ SetReadDeadline(time.Time) error }, b []byte) (int, error) {
	if err := dl.SetReadDeadline(pastDeadline); err != nil {
		return 0, err
	}
	total := 0
	var err error
	for total < len(b) {
		var m int
		m, err = src.Read(b[total:])
		total += m
		if err != nil || m == 0 {
			break
		}
	}
	if isTimeoutErr(err) {
		err = nil
	}
	if derr := dl.SetReadDeadline(time.Time{}); err == nil {
		err = derr
	}
	return total, err
}

func eofNil(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// waitedCopy is copyLowMem for a source that can be waited on without a
// buffer: run waits, step reads and forwards. The non-blocking reader of
// a plain source is set up only once the source streams (most idle
// connections never need it).
//
// With aside (Linux: a plain socket, or an mtls connection over one), the
// goroutine that waits only waits - on the socket's readiness, a shallow
// call - and each burst of data is moved by a short-lived goroutine
// (burstAside): reading, decrypting, encrypting and writing grow a
// goroutine's stack past its initial 2 KiB, and a goroutine parked for
// hours keeps whatever stack it grew (the runtime shrinks a stack only
// when less than a quarter of it is in use, which a goroutine parked in
// the poller never is). So an idle proxied connection keeps two small
// stacks, and the grown ones go away with their goroutines.
type waitedCopy struct {
	dst     io.Writer
	src     io.Reader
	conn    net.Conn
	touch   func()
	wait    func() error
	dl      interface{ SetReadDeadline(time.Time) error } // mtls sources: drained
	readNow func([]byte) (int, bool, error)               // plain sources, once streaming
	hot     bool                                          // the last read filled the big buffer

	aside   bool         // bursts run on a short-lived goroutine
	pending func() bool  // mtls sources with aside: more is buffered
	ready   func() error // mtls sources with aside: WaitReadable, before a buffer is taken
	done    chan struct{}
	fin     bool  // burstAside's result
	err     error // burstAside's result
	moved   int   // bytes forwarded in the current burst
}

// shallowMTLS sets up aside for an mtls source over a plain socket: wait
// for the socket only when the mtls connection has nothing buffered (and
// so holds no buffer), and leave what the socket says (data, the peer's
// FIN, a reset) to the mtls Read, which tells a close_notify from a
// truncation.
func (w *waitedCopy) shallowMTLS(c net.Conn) {
	ip, ok := c.(inputPender)
	if !ok {
		return
	}
	sw := readinessWaiter(ip.NetConn())
	if sw == nil {
		return
	}
	w.aside, w.pending, w.ready = true, ip.InputPending, w.wait
	w.wait = func() error {
		if ip.InputPending() {
			return nil
		}
		if err := sw(); err != io.EOF {
			return err
		}
		return nil // the mtls Read reports the end of the stream
	}
}

func (w *waitedCopy) run() error {
	for {
		if w.aside {
			if err := w.wait(); err != nil {
				return eofNil(err)
			}
			if fin, err := w.burstAside(); fin {
				return err
			}
			continue
		}
		if w.hot {
			// Streaming: read on without waiting; only if nothing is
			// there does the buffer go back before the wait.
			again, fin, err := w.step(false)
			if fin {
				return err
			}
			if !again {
				continue
			}
		}
		// Always wait first (at once when data is already there): a
		// blocking Read here would hold the big buffer for as long as the
		// peer stays quiet.
		if err := w.wait(); err != nil {
			return eofNil(err)
		}
		if _, fin, err := w.step(true); fin {
			return err
		}
	}
}

// burstAside runs burst on a mover goroutine and waits for it.
func (w *waitedCopy) burstAside() (fin bool, err error) {
	if w.done == nil {
		w.done = make(chan struct{}, 1)
	}
	select {
	case moverWork <- w: // a parked mover takes it
	default:
		go mover(w)
	}
	<-w.done
	return w.fin, w.err
}

// Movers are the goroutines that run bursts. Their stacks grow with the
// work (decryption, encryption, system calls): a few are kept parked for
// the next burst, for up to moverIdle (maxIdleMovers), so a busy proxy
// does not create a goroutine and grow its stack for every burst; any
// beyond those end after their burst, so a peak of concurrent bursts (a
// mass close) leaves no grown stacks behind, and an idle proxy keeps none.
var (
	moverWork  = make(chan *waitedCopy)
	idleMovers atomic.Int32
)

// maxIdleMovers bounds the movers kept parked between bursts.
var maxIdleMovers = int32(4 * runtime.GOMAXPROCS(0))

const moverIdle = time.Second

func mover(w *waitedCopy) {
	var idle *time.Timer
	for {
		w.fin, w.err = w.burst()
		w.done <- struct{}{}
		if idleMovers.Add(1) > maxIdleMovers {
			idleMovers.Add(-1)
			return
		}
		if idle == nil {
			idle = time.NewTimer(moverIdle)
		} else {
			idle.Reset(moverIdle)
		}
		select {
		case w = <-moverWork:
			idleMovers.Add(-1)
		case <-idle.C:
			idleMovers.Add(-1)
			return
		}
	}
}

// burst moves what has arrived after a wait: one read, then on without
// waiting while a plain source streams or an mtls source has more
// buffered. fin reports the end of the copy, with its result err.
func (w *waitedCopy) burst() (fin bool, err error) {
	waited := true
	w.moved = 0
	for {
		if w.ready != nil {
			// Decrypt the record that came before taking a buffer: a
			// close_notify or a failure ends the copy without one (a
			// mass close must not make every connection take a buffer).
			if err := w.ready(); err != nil {
				return true, eofNil(err)
			}
		}
		again, fin, err := w.step(waited)
		switch {
		case fin:
			return true, err
		case !again && w.hot:
			waited = false // a plain source streams: read on
		case !again && w.pending != nil && w.pending():
			waited = true // an mtls source has more buffered
		case w.moved >= lingerAfter && w.linger():
			// A stream that paused for less than lingerFor goes on here,
			// without handing back to the waiting goroutine and over
			// again.
			waited, w.moved = true, 0
		default:
			return false, nil // the source has nothing more: wait
		}
	}
}

// A burst that moved at least lingerAfter bytes waits up to lingerFor for
// more before it hands back to the waiting goroutine: a stream's source
// is often empty for a moment between its sender's writes, and going back
// to the poller through the waiting goroutine costs two goroutine
// switches each time.
const (
	lingerAfter = bigBufSize
	lingerFor   = time.Millisecond
)

// linger waits up to lingerFor for the source to have something (data,
// its end or an error), and reports whether it has.
func (w *waitedCopy) linger() bool {
	if w.conn.SetReadDeadline(time.Now().Add(lingerFor)) != nil {
		return false
	}
	err := w.wait()
	if w.conn.SetReadDeadline(time.Time{}) != nil {
		return false
	}
	return err == nil || err == io.EOF
}

// step reads once into a pooled big buffer - after a wait with a plain
// Read, else without blocking (again: there was nothing) - and forwards
// what it got. fin reports the end of the copy, with its result err.
//
//go:noinline
func (w *waitedCopy) step(waited bool) (again, fin bool, err error) {
	bp := getBigBuf()
	var n int
	if waited {
		n, err = w.src.Read(*bp)
	} else {
		if w.readNow == nil {
			if w.readNow = nonBlockingReader(w.conn); w.readNow == nil {
				w.hot = false // cannot read without blocking: wait instead
				bigBufPool.Put(bp)
				return true, false, nil
			}
		}
		if n, again, err = w.readNow(*bp); again {
			w.hot = false
			bigBufPool.Put(bp)
			return true, false, nil
		}
	}
	w.hot = n == len(*bp) && w.dl == nil
	if n > 0 {
		w.touch()
	}
	if w.dl != nil && err == nil && n >= drainAfter {
		var m int
		m, err = drain(w.src, w.dl, (*bp)[n:])
		n += m
	}
	if n > 0 {
		if _, werr := w.dst.Write((*bp)[:n]); werr != nil {
			bigBufPool.Put(bp)
			return false, true, werr
		}
		w.moved += n
	}
	bigBufPool.Put(bp)
	if err != nil {
		return false, true, eofNil(err)
	}
	return false, false, nil
}
