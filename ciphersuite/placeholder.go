package ciphersuite

import "errors"

// errTODO is returned by the placeholders still in the package (the Milagro
// hooks in milagro.go until their real implementation lands). Delete this
// file once nothing refers to it.
var errTODO = errors.New("ciphersuite: not implemented yet")
