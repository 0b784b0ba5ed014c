package ciphersuite

// Placeholder for the Milagro key exchanges; the Milagro owner replaces this
// file (keeping these four hooks, which the generic dispatcher calls).

// CSClient holds a client's Milagro CS credentials.
type CSClient struct{}

// CSServer holds a server's Milagro CS credentials and policy.
type CSServer struct{}

// P2PClient holds a P2P peer's credentials when it is the TLS client.
type P2PClient struct{}

// P2PServer holds a P2P peer's credentials when it is the TLS server.
type P2PServer struct{}

// newMilagroClientKX returns the client key exchange part for kind
// (KXMilagroCS or KXMilagroP2P); the dispatcher calls it once per kind
// offered, calls HelloExtensions on it, and routes the chosen suite to it.
func newMilagroClientKX(cfg *ClientConfig, kind KXKind) (ClientKX, error) { return nil, errTODO }

// newMilagroServerKX returns the server key exchange for a Milagro suite
// (it verifies the milagro_cs proof for CS and may fail with an *AlertError).
func newMilagroServerKX(cfg *ServerConfig, s *Suite, hello *ClientHelloInfo) (ServerKX, error) {
	return nil, errTODO
}

// milagroClientSupports / milagroServerSupports: the Milagro part of Supports.
func milagroClientSupports(cfg *ClientConfig, s *Suite) bool { return false }

func milagroServerSupports(cfg *ServerConfig, s *Suite, hello *ClientHelloInfo) bool { return false }
