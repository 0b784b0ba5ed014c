//go:build !unix

package mtls

import "os"

// ownedByRoot: no Unix ownership here.
func ownedByRoot(os.FileInfo) bool { return false }
