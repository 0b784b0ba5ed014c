//go:build unix

package mtls

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A key path that names a FIFO is refused at once instead of blocking the
// loader until some process opens the FIFO for writing.
func TestLoadKeyRefusesFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "server.key")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := LoadKey(p); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrKeyFile) {
			t.Fatalf("LoadKey(fifo) = %v, want ErrKeyFile", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LoadKey blocked on a FIFO")
	}
}
