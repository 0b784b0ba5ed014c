package mtls

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/handshake"
)

// defaultCurves is the ECDHE_PSK group preference when CurvePreferences is nil.
var defaultCurves = []ciphersuite.CurveID{ciphersuite.X25519, ciphersuite.P256}

// Clone returns a shallow copy of c (callbacks and byte slices are shared).
// The copy shares c's prepared Milagro credentials, including the PIN from
// GetPIN, even if c has not been used yet (milagro_config.go).
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	c.milagroHolder() // create the holder in c first, so that the copy shares it
	cp := *c
	return &cp
}

// hasServerCredential reports whether c can answer any client as a server.
func (c *Config) hasServerCredential() bool {
	return len(c.CSServerKeys) > 0 || c.GetCSServerKey != nil || c.P2PKey != nil ||
		c.GetServerPSK != nil || c.GetConfigForClient != nil
}

func (c *Config) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

func (c *Config) time() func() time.Time {
	if c.Time != nil {
		return c.Time
	}
	return time.Now
}

// suites resolves CipherSuites; nil means every implemented suite (the
// handshake keeps those the credentials support).
func (c *Config) suites() ([]*ciphersuite.Suite, error) {
	if c.CipherSuites == nil {
		all := ciphersuite.All()
		return append([]*ciphersuite.Suite(nil), all...), nil
	}
	out := make([]*ciphersuite.Suite, 0, len(c.CipherSuites))
	for _, id := range c.CipherSuites {
		s := ciphersuite.ByID(id)
		if s == nil {
			return nil, fmt.Errorf("mtls: unknown cipher suite %#04x in Config.CipherSuites", id)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("mtls: Config.CipherSuites is empty")
	}
	return out, nil
}

func (c *Config) curves() []ciphersuite.CurveID {
	if c.CurvePreferences != nil {
		return append([]ciphersuite.CurveID(nil), c.CurvePreferences...)
	}
	return append([]ciphersuite.CurveID(nil), defaultCurves...)
}

func (c *Config) keyLog() io.Writer {
	if c.KeyLogWriter == nil {
		return nil
	}
	return keyLogWriter{c.KeyLogWriter}
}

// checkPostQuantum refuses a PostQuantum value it does not know, and
// PostQuantumRequire without Milagro credentials (only the Milagro suites
// can be hybrid, so every handshake would fail).
func (c *Config) checkPostQuantum(haveMilagro bool) error {
	switch c.PostQuantum {
	case PostQuantumPrefer, PostQuantumOff:
	case PostQuantumRequire:
		if !haveMilagro {
			return errors.New("mtls: Config.PostQuantum is require, but there are no Milagro credentials: only the Milagro suites can be post-quantum hybrid (PSK suites cannot)")
		}
	default:
		return fmt.Errorf("mtls: unknown Config.PostQuantum %v", c.PostQuantum)
	}
	return nil
}

// clientHandshakeConfig is the one place that maps a Config to the client
// handshake's configuration.
func (c *Config) clientHandshakeConfig() (*handshake.ClientConfig, error) {
	suites, err := c.suites()
	if err != nil {
		return nil, err
	}
	idS, err := c.serverIdentity()
	if err != nil {
		return nil, err
	}
	if idS != "" {
		// Spec §6a: a client that expects a server identity offers only
		// suites that prove it; any PSK holder could pick a PSK suite.
		kept := suites[:0]
		for _, s := range suites {
			if s.KX == ciphersuite.KXMilagroCS || s.KX == ciphersuite.KXMilagroP2P {
				kept = append(kept, s)
			}
		}
		if len(kept) == 0 {
			return nil, fmt.Errorf("mtls: Config.ServerIdentity is %q but no Milagro suite is enabled: PSK suites cannot prove a server identity", idS)
		}
		suites = kept
	}
	if err := handshake.CheckNextProtos(c.NextProtos); err != nil {
		return nil, fmt.Errorf("mtls: Config.NextProtos: %w", err)
	}
	kx := &ciphersuite.ClientConfig{
		Rand:   c.rand(),
		Time:   c.time(),
		Curves: c.curves(),
		PQ:     c.PostQuantum,
	}
	switch {
	case c.GetClientPSK != nil:
		get := c.GetClientPSK
		kx.PSK = func(hint []byte) ([]byte, []byte, error) {
			id, psk, err := get(hint)
			if err != nil {
				return nil, nil, err
			}
			return []byte(id), psk, nil
		}
	case len(c.PSK) > 0:
		id, psk := []byte(c.PSKIdentity), c.PSK
		kx.PSK = func([]byte) ([]byte, []byte, error) { return id, psk, nil }
	}
	// Milagro credentials: see milagro_config.go.
	if err := c.milagroClientKX(kx); err != nil {
		return nil, err
	}
	if err := c.checkPostQuantum(kx.CS != nil || kx.P2P != nil); err != nil {
		return nil, err
	}
	return &handshake.ClientConfig{
		Rand:               kx.Rand,
		Suites:             suites,
		KX:                 kx,
		ServerName:         c.ServerName,
		InsecureAllowNoEMS: c.InsecureAllowNoEMS,
		KeyLog:             c.keyLog(),
		NextProtos:         c.NextProtos,
	}, nil
}

// serverHandshakeConfig is the one place that maps a Config to the server
// handshake's configuration.
func (c *Config) serverHandshakeConfig(ctx context.Context, source Source) (*handshake.ServerConfig, error) {
	hc, err := c.serverHandshakeConfigNoCallback()
	if err != nil {
		return nil, err
	}
	c.milagroServerGuards(hc.KX, c, ctx, source)
	if hc.Tickets, err = c.serverTickets(); err != nil {
		return nil, err
	}
	if get := c.GetConfigForClient; get != nil {
		hc.GetConfigForClient = func(hi *ClientHelloInfo) (*handshake.ServerConfig, error) {
			cfg, err := get(hi)
			if err != nil || cfg == nil {
				return nil, err
			}
			shc, err := cfg.serverHandshakeConfigNoCallback()
			if err != nil {
				return nil, err
			}
			// The guards (lockout, replay cache, pairing gate) are the
			// parent's unless the returned Config brings its own: a
			// Config made per hello must not start every count afresh.
			cfg.milagroServerGuards(shc.KX, c, ctx, source)
			// Ticket keys stay the parent's (as crypto/tls's); the
			// returned Config may turn tickets off.
			if !cfg.SessionTicketsDisabled {
				shc.Tickets = hc.Tickets
			}
			return shc, nil
		}
	}
	return hc, nil
}

func (c *Config) serverHandshakeConfigNoCallback() (*handshake.ServerConfig, error) {
	suites, err := c.suites()
	if err != nil {
		return nil, err
	}
	if err := handshake.CheckNextProtos(c.NextProtos); err != nil {
		return nil, fmt.Errorf("mtls: Config.NextProtos: %w", err)
	}
	kx := &ciphersuite.ServerConfig{
		Rand:               c.rand(),
		Time:               c.time(),
		Curves:             c.curves(),
		VerifyPeerIdentity: c.VerifyPeerIdentity,
		PQ:                 c.PostQuantum,
	}
	if c.PSKIdentityHint != "" {
		kx.Hint = []byte(c.PSKIdentityHint)
	}
	kx.TicketScope = c.ticketScope()
	if get := c.GetServerPSK; get != nil {
		kx.PSK = func(identity []byte) ([]byte, error) { return get(string(identity)) }
	}
	// Milagro credentials: see milagro_config.go.
	if err := c.milagroServerKX(kx); err != nil {
		return nil, err
	}
	if err := c.checkPostQuantum(kx.CS != nil || kx.P2P != nil); err != nil {
		return nil, err
	}
	return &handshake.ServerConfig{
		Rand:               kx.Rand,
		Suites:             suites,
		KX:                 kx,
		InsecureAllowNoEMS: c.InsecureAllowNoEMS,
		KeyLog:             c.keyLog(),
		NextProtos:         c.NextProtos,
	}, nil
}

// keyLogMutex serializes key-log lines from all connections (like crypto/tls).
var keyLogMutex sync.Mutex

type keyLogWriter struct{ w io.Writer }

func (k keyLogWriter) Write(p []byte) (int, error) {
	keyLogMutex.Lock()
	defer keyLogMutex.Unlock()
	return k.w.Write(p)
}

// hostnameForSNI returns the host part of addr, for Config.ServerName.
func hostnameForSNI(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return host
}
