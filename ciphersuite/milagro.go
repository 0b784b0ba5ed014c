package ciphersuite

// Placeholder types for the Milagro key exchanges; the real definitions
// (wrapping package pairing) replace this file.

// CSClient holds a client's Milagro CS credentials.
type CSClient struct{}

// CSServer holds a server's Milagro CS credentials and policy.
type CSServer struct{}

// P2PClient holds a P2P peer's credentials when it is the TLS client.
type P2PClient struct{}

// P2PServer holds a P2P peer's credentials when it is the TLS server.
type P2PServer struct{}
