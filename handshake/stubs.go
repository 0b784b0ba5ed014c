package handshake

import (
	"context"
	"errors"
)

// Stubs: the handshake owner replaces this file with the real functions.

// Client runs a client handshake over rl. Errors that end the handshake
// because of the peer or the configuration are *ciphersuite.AlertError
// (Remote=false: the caller, the record layer's owner, sends that alert).
func Client(ctx context.Context, rl RecordLayer, cfg *ClientConfig) (*State, error) {
	return nil, errors.New("handshake: not implemented yet")
}

// Server runs a server handshake over rl (errors as for Client).
func Server(ctx context.Context, rl RecordLayer, cfg *ServerConfig) (*State, error) {
	return nil, errors.New("handshake: not implemented yet")
}
