package ciphersuite

// The generic key-exchange entry points: they route each kind of key
// exchange to its implementation (PSK kinds in psk.go, Milagro kinds through
// the hooks in milagro.go).

func isPSKKind(k KXKind) bool { return k == KXPSK || k == KXECDHEPSK }

func isMilagroKind(k KXKind) bool { return k == KXMilagroCS || k == KXMilagroP2P }

// NewClientKX returns the client key exchange for a handshake offering the
// given suites (all of which cfg.Supports). It holds one part per kind of
// key exchange among the offered suites; the server's choice of suite picks
// the part that the later calls go to.
func NewClientKX(cfg *ClientConfig, offered []*Suite) (ClientKX, error) {
	if cfg == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: NewClientKX: nil config")
	}
	if len(offered) == 0 {
		return nil, Errorf(AlertInternalError, "ciphersuite: NewClientKX: no suites offered")
	}
	c := &clientKX{cfg: cfg}
	for _, s := range offered {
		if s == nil {
			return nil, Errorf(AlertInternalError, "ciphersuite: NewClientKX: nil suite")
		}
		if c.part(s.KX) != nil {
			continue
		}
		if !cfg.Supports(s) {
			return nil, Errorf(AlertInternalError, "ciphersuite: %s offered but the client configuration cannot use it", s)
		}
		var p ClientKX
		var err error
		switch {
		case isPSKKind(s.KX):
			p, err = newPSKClient(cfg, s.KX)
		case isMilagroKind(s.KX):
			p, err = newMilagroClientKX(cfg, s.KX)
		default:
			err = Errorf(AlertInternalError, "ciphersuite: %s: unknown key exchange %d", s, s.KX)
		}
		if err != nil {
			return nil, err
		}
		c.parts[s.KX] = p
		c.kinds = append(c.kinds, s.KX)
	}
	return c, nil
}

// clientKX is the composite client key exchange.
type clientKX struct {
	cfg    *ClientConfig
	parts  [KXMilagroP2P + 1]ClientKX // indexed by KXKind
	kinds  []KXKind                   // in order of first offer
	chosen ClientKX
	pq     *pqClient // the hybrid's key pair, when milagro_pq was offered
	pqSeen bool      // ProcessServerHello ran
}

func (c *clientKX) part(k KXKind) ClientKX {
	if int(k) >= len(c.parts) {
		return nil
	}
	return c.parts[k]
}

// choose routes the handshake to the part for suite s; the choice is fixed
// by the first call.
func (c *clientKX) choose(s *Suite) (ClientKX, error) {
	if s == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: nil suite")
	}
	p := c.part(s.KX)
	if p == nil {
		return nil, Errorf(AlertIllegalParameter, "ciphersuite: server chose %s, whose key exchange was not offered", s)
	}
	if c.chosen != nil && c.chosen != p {
		return nil, Errorf(AlertInternalError, "ciphersuite: key exchange switched to %s mid-handshake", s)
	}
	c.chosen = p
	return p, nil
}

func (c *clientKX) HelloExtensions() ([]Extension, error) {
	var exts []Extension
	for _, k := range c.kinds {
		e, err := c.parts[k].HelloExtensions()
		if err != nil {
			return nil, err
		}
		exts = append(exts, e...)
	}
	// milagro_pq goes beside Milagro suites only, after their own
	// extensions (so the Rand stream is: the Milagro draws, then the
	// ML-KEM seed).
	if c.cfg.PQ != PQOff && c.offersMilagro() {
		pq, e, err := newPQClient(c.cfg.Rand)
		if err != nil {
			return nil, err
		}
		c.pq = pq
		exts = append(exts, e)
	}
	return exts, nil
}

func (c *clientKX) offersMilagro() bool {
	for _, k := range c.kinds {
		if isMilagroKind(k) {
			return true
		}
	}
	return false
}

// ProcessServerHello reads the server's milagro_pq (docs/protocol.md §5b)
// for the chosen suite s and hands the ML-KEM secret to the Milagro part.
func (c *clientKX) ProcessServerHello(s *Suite, exts []Extension) error {
	p, err := c.choose(s)
	if err != nil {
		return err
	}
	if c.pqSeen {
		return Errorf(AlertInternalError, "ciphersuite: ServerHello processed twice")
	}
	c.pqSeen = true
	var data []byte
	found := false
	for _, e := range exts {
		if e.Type == ExtMilagroPQ {
			data, found = e.Data, true
		}
	}
	pq := c.pq
	c.pq = nil // one use: the decapsulation key goes away with it
	switch {
	case found && pq == nil:
		return Errorf(AlertUnsupportedExtension, "ciphersuite: the ServerHello carries milagro_pq, which the client did not send")
	case found && !isMilagroKind(s.KX):
		return Errorf(AlertUnsupportedExtension, "ciphersuite: the ServerHello carries milagro_pq beside %s, which cannot be hybrid", s)
	case !found && c.cfg.PQ == PQRequire:
		return Errorf(AlertInsufficientSecurity, "ciphersuite: %s: the server did not answer the post-quantum hybrid (milagro_pq), which this client requires", s)
	case !found:
		return nil
	}
	ss, err := pq.decapsulate(data)
	if err != nil {
		return err
	}
	h, ok := p.(interface{ setPQSecret([]byte) })
	if !ok {
		clear(ss)
		return Errorf(AlertInternalError, "ciphersuite: %s cannot take the hybrid secret", s)
	}
	h.setPQSecret(ss)
	return nil
}

// PostQuantum reports whether the chosen key exchange mixed the ML-KEM
// secret into the pre-master secret.
func (c *clientKX) PostQuantum() bool {
	h, ok := c.chosen.(PostQuantum)
	return ok && h.PostQuantum()
}

func (c *clientKX) ProcessServerKeyExchange(s *Suite, body []byte) error {
	p, err := c.choose(s)
	if err != nil {
		return err
	}
	if c.cfg.PQ == PQRequire && !c.pqSeen {
		return Errorf(AlertInternalError, "ciphersuite: the post-quantum hybrid is required but the ServerHello was not processed")
	}
	return p.ProcessServerKeyExchange(s, body)
}

func (c *clientKX) GenerateClientKeyExchange(s *Suite) (body, preMaster []byte, err error) {
	p, err := c.choose(s)
	if err != nil {
		return nil, nil, err
	}
	return p.GenerateClientKeyExchange(s)
}

func (c *clientKX) PeerIdentity() string {
	if c.chosen == nil {
		return ""
	}
	return c.chosen.PeerIdentity()
}

func (c *clientKX) LocalIdentity() string {
	if c.chosen == nil {
		return ""
	}
	return c.chosen.LocalIdentity()
}

// PSKIdentityHint is the server's psk_identity_hint when a PSK suite was
// chosen (unauthenticated; never a peer identity).
func (c *clientKX) PSKIdentityHint() string {
	if h, ok := c.chosen.(interface{ PSKIdentityHint() string }); ok {
		return h.PSKIdentityHint()
	}
	return ""
}

// PermitDay is the permit day a Milagro CS client sent (0 otherwise).
func (c *clientKX) PermitDay() uint64 {
	if d, ok := c.chosen.(interface{ PermitDay() uint64 }); ok {
		return d.PermitDay()
	}
	return 0
}

// NewServerKX returns the server key exchange for the chosen suite. It may
// fail with an *AlertError (e.g. a Milagro CS proof that does not verify).
func NewServerKX(cfg *ServerConfig, s *Suite, hello *ClientHelloInfo) (ServerKX, error) {
	if cfg == nil || s == nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: NewServerKX: nil config or suite")
	}
	if hello == nil {
		hello = &ClientHelloInfo{}
	}
	switch {
	case isPSKKind(s.KX):
		k, err := newPSKServer(cfg, s, hello)
		if err != nil {
			return nil, err
		}
		return k, nil
	case isMilagroKind(s.KX):
		return newMilagroServerKX(cfg, s, hello)
	}
	return nil, Errorf(AlertInternalError, "ciphersuite: %s: unknown key exchange %d", s, s.KX)
}

// Supports reports whether the client has what suite s needs: a PSK
// callback for the PSK kinds, plus a supported curve in Curves for
// ECDHE_PSK (an empty Curves means DefaultCurves); the Milagro credentials
// for the Milagro kinds.
func (c *ClientConfig) Supports(s *Suite) bool {
	if c == nil || s == nil {
		return false
	}
	switch {
	case isPSKKind(s.KX) && c.PQ == PQRequire:
		return false // PSK suites cannot be hybrid
	case s.KX == KXPSK:
		return c.PSK != nil
	case s.KX == KXECDHEPSK:
		return c.PSK != nil && hasKnownCurve(curvesOrDefault(c.Curves))
	case isMilagroKind(s.KX):
		return milagroClientSupports(c, s)
	}
	return false
}

// Supports reports whether the server can negotiate suite s with this
// ClientHello (credentials configured, a common curve for ECDHE, the
// milagro_cs extension present for CS).
func (c *ServerConfig) Supports(s *Suite, hello *ClientHelloInfo) bool {
	if c == nil || s == nil {
		return false
	}
	if hello == nil {
		hello = &ClientHelloInfo{}
	}
	switch {
	case s.KX == KXPSK:
		return c.PSK != nil
	case s.KX == KXECDHEPSK:
		return c.PSK != nil && pointFormatsOK(hello) && pickCurve(c.Curves, hello) != 0
	case isMilagroKind(s.KX):
		return milagroServerSupports(c, s, hello)
	}
	return false
}
