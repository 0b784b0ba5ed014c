package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// SecureConn is what the proxy needs of an mtls connection (*mtls.Conn
// satisfies it). Tests may substitute other implementations.
type SecureConn interface {
	net.Conn
	HandshakeContext(ctx context.Context) error
	ConnectionState() mtls.ConnectionState
	CloseWrite() error
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("proxy: server closed")

// loop is the accept loop, connection tracking and shutdown shared by Server
// and Client.
type loop struct {
	maxConns int

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*tracked]struct{}
	closing   bool
	done      chan struct{} // closed when closing starts
	wg        sync.WaitGroup
	sem       chan struct{}
	initOnce  sync.Once
	nconns    atomic.Int64
	nextID    atomic.Uint64
	inited    atomic.Bool // init ran (revoke must not run it: maxConns is set by Serve)
}

type tracked struct {
	id       uint64 // connection id, logged as "conn" on every line
	mu       sync.Mutex
	closers  []func()
	dead     bool
	identity string // the peer identity once authenticated (server mode)
	authed   bool
	// handedOff: the handler passed the connection on (to the tarpit,
	// which closes it later); the loop must not close it.
	handedOff atomic.Bool
	// finish is the loop's bookkeeping at the connection's end; detached:
	// the handler left it to the goroutine that detach started. Both are
	// used by the handler's goroutine only.
	finish   func()
	detached bool
}

// detach hands the rest of the connection's life, f, to a goroutine of its
// own, and the loop's bookkeeping at its end with it; the handler then
// returns at once. The setup (handshake, dial, logging) grows the stack of
// the goroutine that runs it to 8 KiB or more, and a goroutine keeps its
// stack until the GC happens to shrink it (only below a quarter in use,
// which a goroutine parked in the poller never is): run on the goroutine
// that then waits on an idle connection for hours, that stack would stay
// with every idle connection. The detached goroutine starts with a small
// stack, and the forwarding keeps it small (see waitedCopy).
func (t *tracked) detach(f func()) {
	t.detached = true
	fin := t.finish
	go func() {
		f()
		fin()
	}()
}

// setIdentity records the authenticated peer identity (for revocation).
func (t *tracked) setIdentity(id string) {
	t.mu.Lock()
	t.identity, t.authed = id, true
	t.mu.Unlock()
}

// add registers a closer run on forced shutdown; if the connection is
// already being force-closed it runs at once.
func (t *tracked) add(f func()) {
	t.mu.Lock()
	if t.dead {
		t.mu.Unlock()
		f()
		return
	}
	t.closers = append(t.closers, f)
	t.mu.Unlock()
}

// addUntil is add for a closer needed only until the returned function
// runs (a context's cancel, for a dial or handshake that has ended):
// that function forgets it, so a long-lived connection does not keep it
// (and what it holds) for its whole life.
func (t *tracked) addUntil(f func()) (forget func()) {
	t.mu.Lock()
	if t.dead {
		t.mu.Unlock()
		f()
		return func() {}
	}
	i := len(t.closers)
	t.closers = append(t.closers, f)
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		if i < len(t.closers) {
			t.closers[i] = nil
		}
		t.mu.Unlock()
	}
}

func (t *tracked) kill() {
	t.mu.Lock()
	t.dead = true
	cs := t.closers
	t.closers = nil
	t.mu.Unlock()
	for _, f := range cs {
		if f != nil {
			f()
		}
	}
}

func (l *loop) init() {
	l.initOnce.Do(func() {
		l.listeners = make(map[net.Listener]struct{})
		l.conns = make(map[*tracked]struct{})
		l.done = make(chan struct{})
		if l.maxConns > 0 {
			l.sem = make(chan struct{}, l.maxConns)
		}
		l.inited.Store(true)
	})
}

// serve accepts on ln until it is closed or ctx is done. When ctx is done
// the listener and every connection are closed at once (a hard stop);
// Shutdown is the graceful way. With maxConns set, excess connections are
// not accepted until a slot frees: they wait in the kernel's listen backlog
// (as ghostunnel's --max-concurrent-conns does) rather than being refused.
func (l *loop) serve(ctx context.Context, ln net.Listener, log *slog.Logger, handle func(ctx context.Context, c net.Conn, t *tracked)) error {
	l.init()
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	l.listeners[ln] = struct{}{}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.listeners, ln)
		l.mu.Unlock()
	}()

	// A done ctx is a hard stop: close the listener and every connection.
	// The registration deliberately outlives serve (a Shutdown that is
	// draining can still be cut short by cancelling ctx).
	context.AfterFunc(ctx, func() {
		ln.Close()
		l.closeAll()
	})

	var backoff time.Duration
	for {
		if l.sem != nil {
			select {
			case l.sem <- struct{}{}:
			case <-l.done:
				return ErrServerClosed
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		c, err := ln.Accept()
		if err != nil {
			if l.sem != nil {
				<-l.sem
			}
			select {
			case <-l.done:
				return ErrServerClosed
			default:
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				log.Warn("accept failed; retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
				case <-l.done:
				}
				continue
			}
			return err
		}
		backoff = 0
		t := &tracked{id: l.nextID.Add(1)}
		t.add(func() { c.Close() })
		l.mu.Lock()
		if l.closing {
			l.mu.Unlock()
			c.Close()
			if l.sem != nil {
				<-l.sem
			}
			return ErrServerClosed
		}
		l.conns[t] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		l.nconns.Add(1)
		if ctx.Err() != nil {
			t.kill() // raced with the hard stop's closeAll
		}
		go func() {
			t.finish = func() {
				if !t.handedOff.Load() {
					c.Close()
				}
				l.mu.Lock()
				delete(l.conns, t)
				l.mu.Unlock()
				l.nconns.Add(-1)
				if l.sem != nil {
					<-l.sem
				}
				l.wg.Done()
			}
			handle(ctx, c, t)
			if !t.detached {
				t.finish()
			}
		}()
	}
}

// onShortStack runs f on a short-lived goroutine and waits for it. The mtls
// handshake (Milagro CS: deep pairing math) grows the stack of the goroutine
// that runs it to 8 KiB or more, and a goroutine keeps its stack until the GC
// happens to shrink it (only below a quarter in use); run on the
// connection's goroutine, which then blocks in the copy loop for the
// connection's whole life, that stack - and the setup's large frame, which
// alone kept the server's at 8 KiB - would stay with every idle
// connection. Here they go away with the helper goroutine.
func onShortStack(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

// isTemporary reports accept errors worth retrying (EMFILE, ENFILE,
// ECONNABORTED...), which net reports through the deprecated Temporary.
func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

func (l *loop) closeAll() {
	l.mu.Lock()
	ts := make([]*tracked, 0, len(l.conns))
	for t := range l.conns {
		ts = append(ts, t)
	}
	l.mu.Unlock()
	for _, t := range ts {
		t.kill()
	}
}

// shutdown stops accepting, waits for live connections to end until ctx is
// done, then closes the rest and waits for their goroutines.
func (l *loop) shutdown(ctx context.Context) error {
	l.init()
	l.mu.Lock()
	if !l.closing {
		l.closing = true
		close(l.done)
	}
	for ln := range l.listeners {
		ln.Close()
	}
	l.mu.Unlock()
	idle := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		l.closeAll()
		<-idle
		return ctx.Err()
	}
}

// revoke closes every live, authenticated connection whose identity keep
// rejects, and returns how many it closed.
func (l *loop) revoke(keep func(identity string) bool) int {
	if !l.inited.Load() {
		return 0 // not serving yet: no connection
	}
	l.mu.Lock()
	var ts []*tracked
	for t := range l.conns {
		t.mu.Lock()
		if t.authed && !keep(t.identity) {
			ts = append(ts, t)
		}
		t.mu.Unlock()
	}
	l.mu.Unlock()
	for _, t := range ts {
		t.kill()
	}
	return len(ts)
}

// Active returns the number of connections being handled.
func (l *loop) Active() int { return int(l.nconns.Load()) }
