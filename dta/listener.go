package dta

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/internal/admission"
	"github.com/milagro-go/milagro/mtls"
)

// Admission: what the D-TA decides about a connection before it spends
// any work on it.
//
// A source is an IPv4 address or an IPv6 /64 (one host commonly owns a
// whole /64). Every failed or timed-out handshake spends one token of its
// source's failure budget; a source that has spent it is refused at accept
// (its connection is held in a tarpit for a while, without a handshake
// slot, then closed), so a source that is being slowed down holds no slot.
// Handshake slots are bounded in all (MaxHandshakes) and per source
// (MaxHandshakesPerAddr), and shared fairly: when all are taken, a new
// source takes the oldest slot of the source holding the most. A slot is
// freed at the latest by the short handshake deadline (HandshakeTimeout).
// A successful handshake forgives nothing: the budget refills with time
// only, so a flooder cannot wash its record with one valid (even a used)
// code.
type admitter struct {
	keyer  admission.Keyer
	budget *admission.Budget
	slots  *admission.Slots
	pit    *admission.Pit
}

func newAdmitter(cfg *ServerConfig, now func() time.Time) *admitter {
	clock := admission.Clock(now)
	return &admitter{
		budget: &admission.Budget{Clock: clock, Rate: cfg.FailureRate, Burst: cfg.FailureBurst},
		slots:  &admission.Slots{Clock: clock, Max: cfg.MaxHandshakes, PerSource: cfg.MaxHandshakesPerAddr},
		pit:    &admission.Pit{Clock: clock, Hold: 2 * time.Second, PerSource: 64, Max: 1024},
	}
}

// hsListener hands net/http connections whose handshake has completed.
type hsListener struct {
	inner     net.Listener
	s         *Server
	out       chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newHSListener(inner net.Listener, s *Server) *hsListener {
	return &hsListener{inner: inner, s: s, out: make(chan net.Conn), done: make(chan struct{})}
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
	s := l.s
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
			s.quiet.warn("accept failed", "", "err", err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		l.admit(c)
	}
}

// admit decides about one accepted connection without blocking.
func (l *hsListener) admit(c net.Conn) {
	s := l.s
	src := s.adm.keyer.Addr(c.RemoteAddr())
	release, ok := s.adm.budget.Admit(src)
	if !ok {
		s.m.slowed.Inc()
		s.m.hsFailures.WithLabelValues("source_slowed").Inc()
		s.quiet.warn("connection from a source that keeps failing handshakes: held, then closed", src.String())
		s.adm.pit.Add(src, c)
		return
	}
	slot, ok := s.adm.slots.Acquire(src, func() { c.Close() })
	if !ok {
		release()
		reason := "overloaded"
		if s.adm.slots.Held(src) >= s.cfg.MaxHandshakesPerAddr {
			reason = "too_many_from_address"
		}
		s.m.hsFailures.WithLabelValues(reason).Inc()
		s.quiet.warn("too many handshakes in progress: connection dropped", src.String(), "reason", reason)
		c.Close()
		return
	}
	go l.handshake(c, src, slot, release)
}

func (l *hsListener) handshake(c net.Conn, src admission.Source, slot *admission.Slot, release func()) {
	s := l.s
	rec := &connRec{born: s.now()}
	tc := mtls.Server(c, s.connTLS(rec))
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	evicted := slot.Evicted()
	slot.Release()
	release()
	if err == nil && tc.ConnectionState().DidResume {
		// Tickets are off; a resumed session here would be a bug.
		err = errors.New("resumed session refused")
	}
	if err != nil {
		reason := "other"
		var ae *ciphersuite.AlertError
		switch {
		case evicted:
			reason = "evicted"
		case errors.As(err, &ae):
			reason = ae.Alert.String()
			if ae.Remote {
				reason = "remote_" + reason
			}
		case errors.Is(err, context.DeadlineExceeded):
			reason = "timeout"
		case errors.Is(err, io.EOF):
			reason = "eof"
		}
		if !evicted {
			// A connection whose slot was given to another source did
			// nothing wrong itself.
			s.adm.budget.Charge(src)
		}
		s.m.hsFailures.WithLabelValues(reason).Inc()
		s.quiet.warn("handshake failed", src.String(), "remote", c.RemoteAddr().String(), "reason", reason, "err", cutErr(err))
		tc.Close()
		return
	}
	select {
	case l.out <- &dtaConn{Conn: tc, rec: rec}:
	case <-l.done:
		tc.Close()
	}
}
