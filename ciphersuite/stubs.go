package ciphersuite

import "errors"

// Stubs: the ciphersuite owner replaces this file with the real functions of
// the same signatures.

var errTODO = errors.New("ciphersuite: not implemented yet")

// NewRecordCipher returns the record protection for one direction, from the
// key and fixed IV cut from the key block.
func NewRecordCipher(s *Suite, key, iv []byte) (RecordCipher, error) { return nil, errTODO }

// NewClientKX returns the client key exchange for a handshake offering the
// given suites (all of which cfg.Supports).
func NewClientKX(cfg *ClientConfig, offered []*Suite) (ClientKX, error) { return nil, errTODO }

// NewServerKX returns the server key exchange for the chosen suite. It may
// fail with an *AlertError (e.g. a Milagro CS proof that does not verify).
func NewServerKX(cfg *ServerConfig, s *Suite, hello *ClientHelloInfo) (ServerKX, error) {
	return nil, errTODO
}

// Supports reports whether the client has what suite s needs.
func (c *ClientConfig) Supports(s *Suite) bool { return false }

// Supports reports whether the server can negotiate suite s with this
// ClientHello (credentials configured, a common curve for ECDHE, the
// milagro_cs extension present for CS).
func (c *ServerConfig) Supports(s *Suite, hello *ClientHelloInfo) bool { return false }
