package mtls

import "github.com/milagro-go/milagro/ciphersuite"

// Milagro credential mapping: the Milagro engineer fills these hooks in (and
// adds the credential fields to Config in their own file). They are called
// by clientHandshakeConfig / serverHandshakeConfig in config.go.

// milagroClientKX adds the client's Milagro CS / P2P credentials to kx.
func (c *Config) milagroClientKX(kx *ciphersuite.ClientConfig) error {
	// TODO(milagro): kx.CS, kx.P2P from Config.
	return nil
}

// milagroServerKX adds the server's Milagro CS / P2P credentials to kx.
func (c *Config) milagroServerKX(kx *ciphersuite.ServerConfig) error {
	// TODO(milagro): kx.CS, kx.P2P from Config.
	return nil
}
