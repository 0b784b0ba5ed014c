package mtls

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/handshake"
)

// Session resumption with RFC 5077 session tickets (the TLS 1.2
// abbreviated handshake; handshake/ticket.go has the wire format).
//
// Server: tickets are on unless SessionTicketsDisabled. The keys are, in
// order of precedence, Config.TicketKeys (called per handshake, newest
// first: a fleet shares them), the keys given to SetSessionTicketKeys, or
// automatic keys like crypto/tls's: a new random key each day, accepted
// for a week. A ticket is only a way to skip the key exchange: the server
// re-checks the session on every resumption (its age against
// SessionTicketLifetime, VerifyPeerIdentity, the CS lockout, the CS permit
// day when permits are required, the keys it still holds) and runs a full
// handshake when anything is wrong with it.
//
// Client: with a ClientSessionCache, sessions are cached under the server
// name (or address) and the server identity the client expects, and are
// offered only to a server it expects the same identity of.

const (
	// MaxSessionTicketLifetime is the longest SessionTicketLifetime.
	MaxSessionTicketLifetime = 24 * time.Hour
	ticketKeyRotation        = 24 * time.Hour
	ticketKeyLifetime        = 7 * 24 * time.Hour
)

// ticketKeyState is what a Config and its Clones share of ticket keys.
type ticketKeyState struct {
	mu   sync.Mutex
	set  []handshake.TicketKey // SetSessionTicketKeys
	auto []handshake.TicketKey // automatic, newest first
	// the last keys TicketKeys returned, and their derivations
	lastRaw [][32]byte
	lastKey []handshake.TicketKey
}

// SetSessionTicketKeys sets the session ticket keys of a server, newest
// first: new tickets are sealed under the first, tickets under any are
// accepted. Servers with the same keys resume each other's sessions. Nil
// or empty returns to automatic keys. It may be called while the Config
// is in use (as crypto/tls's); Config.TicketKeys, if set, wins.
func (c *Config) SetSessionTicketKeys(keys [][32]byte) {
	now := c.time()()
	ks := make([]handshake.TicketKey, len(keys))
	for i, k := range keys {
		ks[i] = handshake.NewTicketKey(k, now)
	}
	t := &c.milagroHolder().tickets
	t.mu.Lock()
	t.set = ks
	t.mu.Unlock()
}

// ticketKeys returns the keys for a handshake now (see above).
func (c *Config) ticketKeys() ([]handshake.TicketKey, error) {
	t := &c.milagroHolder().tickets
	now := c.time()()
	if get := c.TicketKeys; get != nil {
		raw := get()
		t.mu.Lock()
		defer t.mu.Unlock()
		if !sameKeys(raw, t.lastRaw) {
			ks := make([]handshake.TicketKey, len(raw))
			for i, k := range raw {
				ks[i] = handshake.NewTicketKey(k, now)
			}
			t.lastRaw, t.lastKey = append([][32]byte(nil), raw...), ks
		}
		return t.lastKey, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.set) > 0 {
		return t.set, nil
	}
	if len(t.auto) > 0 && now.Sub(t.auto[0].Created) < ticketKeyRotation && !now.Before(t.auto[0].Created) {
		return t.auto, nil
	}
	var secret [32]byte
	if _, err := io.ReadFull(c.rand(), secret[:]); err != nil {
		return nil, fmt.Errorf("mtls: making a session ticket key: %w", err)
	}
	keys := []handshake.TicketKey{handshake.NewTicketKey(secret, now)}
	clear(secret[:])
	for _, k := range t.auto {
		if age := now.Sub(k.Created); age >= 0 && age < ticketKeyLifetime {
			keys = append(keys, k)
		}
	}
	t.auto = keys
	return keys, nil
}

// ticketScope names the configuration that issues a session, for the
// session's binding (ciphersuite.ServerConfig.SessionBinding): its PSK
// identity hint (the permit policy is re-checked on its own). The credentials themselves (the
// PSK, the CS server key and its D-TA set, the P2P key) are bound
// separately, so a Config for another tenant, or a reloaded one with a
// rotated key, does not resume sessions of the first.
func (c *Config) ticketScope() []byte {
	h := sha256.New()
	h.Write([]byte("MTLS1-ticket-scope\x00"))
	h.Write([]byte(c.PSKIdentityHint))
	return h.Sum(nil)
}

func sameKeys(a, b [][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// serverTickets is the ticket configuration of a server handshake (nil:
// tickets off).
func (c *Config) serverTickets() (*handshake.ServerTickets, error) {
	if c.SessionTicketsDisabled {
		return nil, nil
	}
	life := c.SessionTicketLifetime
	if life < 0 || life > MaxSessionTicketLifetime {
		return nil, fmt.Errorf("mtls: Config.SessionTicketLifetime %s is outside 0..%s", life, MaxSessionTicketLifetime)
	}
	if life == 0 {
		life = handshake.DefaultTicketLifetime
	}
	st := &handshake.ServerTickets{Lifetime: life}
	l := c.Logger
	st.Keys = func() []handshake.TicketKey {
		ks, err := c.ticketKeys()
		if err != nil {
			if l != nil {
				l.Warn("mtls: no session ticket keys; this handshake issues and accepts none", "err", err)
			}
			return nil // no tickets this time; the handshake goes on
		}
		return ks
	}
	if l != nil {
		st.OnRefused = func(why string) { l.Debug("mtls: session ticket not resumed", "reason", why) }
	}
	return st, nil
}

// ClientSessionState is a resumable session a client keeps (opaque).
type ClientSessionState struct {
	s *handshake.ClientSession
}

// ClientSessionCache caches sessions for resumption (as crypto/tls's).
// Implementations must be safe for concurrent use. Put with a nil state
// removes the entry.
type ClientSessionCache interface {
	Get(sessionKey string) (session *ClientSessionState, ok bool)
	Put(sessionKey string, cs *ClientSessionState)
}

// clientSessionKey names the cache entry for a connection: the server name
// (else the address dialed) and the server identity expected.
func (c *Conn) clientSessionKey(idS string) string {
	name := c.config.ServerName
	if name == "" {
		if a := c.conn.RemoteAddr(); a != nil {
			name = a.String()
		}
	}
	return name + "\x00" + idS
}

// clientSessionBefore offers a cached session (if usable) and asks for
// tickets. It returns the cache key ("" when no cache is used).
func (c *Conn) clientSessionBefore(hc *handshake.ClientConfig) (string, error) {
	cfg := c.config
	cache := cfg.ClientSessionCache
	if cache == nil || cfg.SessionTicketsDisabled {
		return "", nil
	}
	idS, err := cfg.serverIdentity()
	if err != nil {
		return "", err
	}
	key := c.clientSessionKey(idS)
	hc.RequestTicket = true
	if cs, ok := cache.Get(key); ok && cs != nil && cs.s != nil {
		if cfg.sessionUsable(cs.s, idS, hc.KX.Time()) {
			hc.Session = cs.s
		} else {
			cache.Put(key, nil)
		}
	}
	return key, nil
}

// clientSessionAfter caches the new session, or drops an offered one that
// the server did not resume.
func (c *Conn) clientSessionAfter(key string, hc *handshake.ClientConfig, st *handshake.State, err error) {
	if key == "" {
		return
	}
	cache := c.config.ClientSessionCache
	switch {
	case err == nil && st.Session != nil:
		cache.Put(key, &ClientSessionState{s: st.Session})
	case hc.Session != nil && (err != nil || !st.DidResume):
		cache.Put(key, nil)
	}
}

// sessionUsable reports whether a cached session may be offered: young
// enough, for the server identity expected now, and for this client's
// identity.
func (c *Config) sessionUsable(s *handshake.ClientSession, idS string, now time.Time) bool {
	age := now.Sub(s.ReceivedAt)
	if age < 0 || age > MaxSessionTicketLifetime || (s.LifetimeHint > 0 && age > time.Duration(s.LifetimeHint)*time.Second) {
		return false
	}
	suite := ciphersuite.ByID(s.Suite)
	if suite == nil {
		return false
	}
	switch suite.KX {
	case ciphersuite.KXMilagroCS, ciphersuite.KXMilagroP2P:
		if s.PeerIdentity != idS {
			return false
		}
		var local string
		switch {
		case suite.KX == ciphersuite.KXMilagroP2P && c.P2PKey != nil:
			local = c.P2PKey.ID()
		case suite.KX == ciphersuite.KXMilagroCS && c.CSKey != nil:
			local = c.CSKey.ID()
		case suite.KX == ciphersuite.KXMilagroCS && c.CSToken != nil:
			local = c.CSToken.ID()
		default:
			return false
		}
		return s.LocalIdentity == local
	default:
		if idS != "" {
			return false // a PSK session proves no server identity
		}
		if c.GetClientPSK == nil && s.LocalIdentity != c.PSKIdentity {
			return false
		}
		return c.GetClientPSK != nil || len(c.PSK) > 0
	}
}

// ParseTicketKeys reads session ticket keys from a key file's contents: one
// 32-byte key a line, hex (64 digits) or base64, newest first; blank lines
// and lines starting with # are skipped. An all-zero key is refused.
func ParseTicketKeys(data []byte) ([][32]byte, error) {
	var out [][32]byte
	for n, l := range bytes.Split(data, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		var raw []byte
		var err error
		if len(l) == 64 {
			raw, err = hex.DecodeString(string(l))
		} else {
			raw, err = base64.StdEncoding.DecodeString(string(l))
			if err != nil {
				raw, err = base64.RawStdEncoding.DecodeString(string(l))
			}
		}
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("ticket key file line %d: not a 32-byte key in hex (64 digits) or base64", n+1)
		}
		var k [32]byte
		copy(k[:], raw)
		clear(raw)
		if k == ([32]byte{}) {
			return nil, fmt.Errorf("ticket key file line %d: the key is all zeros", n+1)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("ticket key file holds no key")
	}
	return out, nil
}

// LoadTicketKeys reads a ticket key file (see ParseTicketKeys). Like a
// secret key file (LoadKey), it must be a regular file that group and
// others cannot read (ErrKeyPermissions), except a root-owned 0440/0640.
func LoadTicketKeys(path string) ([][32]byte, error) {
	data, mode, rootOwned, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	// A ticket key is a secret like a key file (see LoadKey): its holder
	// can mint sessions for any identity the policy admits and decrypt
	// recorded sessions while the key lives.
	groupReadByRoot := rootOwned && mode&0o037 == 0
	if mode&0o077 != 0 && !groupReadByRoot && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: session ticket key file %s has mode %04o; make it private: chmod 600 %s "+
			"(a root-owned file may be 0640)", ErrKeyPermissions, path, mode.Perm(), path)
	}
	return ParseTicketKeys(data)
}
