package proxy

import (
	"errors"
	"io"
	"net"
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
	bigBufSize   = 32 << 10
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
	if custom != nil {
		err = custom(cw, &touchReader{r: src, p: p})
	} else {
		err = p.copy(cw, src)
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
	var (
		wait func() error
		dl   interface{ SetReadDeadline(time.Time) error }
	)
	if c, ok := src.(net.Conn); ok {
		if w, ok := c.(readableWaiter); ok {
			wait, dl = w.WaitReadable, c
		} else if wait = readinessWaiter(c); wait == nil {
			dl = c
		}
	}
	for {
		if wait != nil {
			// Always wait first (at once when data is already there): a
			// blocking Read here would hold the big buffer for as long as
			// the peer stays quiet.
			if err := wait(); err != nil {
				return eofNil(err)
			}
			bp := getBigBuf()
			n, err := src.Read(*bp)
			if n > 0 {
				touch()
			}
			if dl != nil && err == nil && n >= drainAfter {
				var m int
				m, err = drain(src, dl, (*bp)[n:])
				n += m
			}
			if n > 0 {
				if _, werr := dst.Write((*bp)[:n]); werr != nil {
					bigBufPool.Put(bp)
					return werr
				}
			}
			bigBufPool.Put(bp)
			if err != nil {
				return eofNil(err)
			}
			continue
		}

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
