package mtls

import (
	"context"
	"errors"
	"net"

	"github.com/milagro-go/milagro/handshake"
)

// Dialer dials TLS connections: Dial and DialContext return after the
// handshake has completed.
type Dialer struct {
	// NetDialer is used for the underlying connection; nil means a zero
	// net.Dialer. Its Timeout and Deadline bound dial and handshake together.
	NetDialer *net.Dialer
	// Config is the client configuration; it must not be nil.
	Config *Config
}

// Dial connects to addr and runs the client handshake.
func Dial(network, addr string, config *Config) (*Conn, error) {
	return dial(context.Background(), new(net.Dialer), network, addr, config)
}

// DialWithDialer is Dial with the underlying connection made by dialer; its
// Timeout and Deadline bound dial and handshake together.
func DialWithDialer(dialer *net.Dialer, network, addr string, config *Config) (*Conn, error) {
	return dial(context.Background(), dialer, network, addr, config)
}

// Dial connects and runs the handshake; the returned net.Conn is a *Conn.
func (d *Dialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

// DialContext connects and runs the handshake; ctx bounds both. The
// returned net.Conn is a *Conn.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := d.NetDialer
	if nd == nil {
		nd = new(net.Dialer)
	}
	c, err := dial(ctx, nd, network, addr, d.Config)
	if err != nil {
		return nil, err // not a typed nil *Conn
	}
	return c, nil
}

func dial(ctx context.Context, nd *net.Dialer, network, addr string, config *Config) (*Conn, error) {
	if config == nil {
		return nil, errors.New("mtls: Dial needs a non-nil Config")
	}
	if nd.Timeout != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, nd.Timeout)
		defer cancel()
	}
	if !nd.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, nd.Deadline)
		defer cancel()
	}
	if config.ServerName == "" {
		config = config.Clone()
		config.ServerName = hostnameForSNI(addr)
	}
	// The first connection may offer a cached Milagro CS session alone (a
	// resumption-only ClientHello: no CS proof to compute). A server that
	// does not resume it refuses with handshake_failure before its
	// ServerHello; the session is then dropped from the cache and the
	// dialer reconnects once, with a full offer and every check of a full
	// handshake. No application data has been sent by then.
	c, err := dialOnce(ctx, nd, network, addr, config, true)
	if errors.Is(err, handshake.ErrResumptionRefused) {
		c, err = dialOnce(ctx, nd, network, addr, config, false)
	}
	return c, err
}

// dialOnce makes one connection and runs its handshake: the first may
// offer a resumption-only ClientHello, the second is the reconnection.
func dialOnce(ctx context.Context, nd *net.Dialer, network, addr string, config *Config, first bool) (*Conn, error) {
	raw, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := Client(raw, config)
	c.canRedial, c.retried = first, !first
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}
