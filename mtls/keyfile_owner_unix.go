//go:build unix

package mtls

import (
	"os"
	"syscall"
)

// ownedByRoot reports whether root owns the file.
func ownedByRoot(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}
