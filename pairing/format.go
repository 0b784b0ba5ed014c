package pairing

import "fmt"

// String and Format of the prepared objects and per-handshake states, which
// hold secrets: they print the type and identity only, for every verb.

func (c CSClient) String() string           { return withID("CSClient", c.id) }
func (s CSServer) String() string           { return "pairing.CSServer{<redacted>}" }
func (s P2PServer) String() string          { return withID("P2PServer", s.id) }
func (c P2PClient) String() string          { return withID("P2PClient", c.id) }
func (hs CSClientHandshake) String() string { return "pairing.CSClientHandshake{<redacted>}" }
func (hs CSServerHandshake) String() string { return withID("CSServerHandshake", hs.id) }
func (hs P2PServerHandshake) String() string {
	return "pairing.P2PServerHandshake{<redacted>}"
}

// Format prints String() for every verb.
func (c CSClient) Format(f fmt.State, _ rune) { redacted(f, c.String()) }

// Format prints String() for every verb.
func (s CSServer) Format(f fmt.State, _ rune) { redacted(f, s.String()) }

// Format prints String() for every verb.
func (s P2PServer) Format(f fmt.State, _ rune) { redacted(f, s.String()) }

// Format prints String() for every verb.
func (c P2PClient) Format(f fmt.State, _ rune) { redacted(f, c.String()) }

// Format prints String() for every verb.
func (hs CSClientHandshake) Format(f fmt.State, _ rune) { redacted(f, hs.String()) }

// Format prints String() for every verb.
func (hs CSServerHandshake) Format(f fmt.State, _ rune) { redacted(f, hs.String()) }

// Format prints String() for every verb.
func (hs P2PServerHandshake) Format(f fmt.State, _ rune) { redacted(f, hs.String()) }
