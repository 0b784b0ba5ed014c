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

// A root-owned key its group may read (0440, 0640: a Kubernetes Secret
// volume with defaultMode 0400 and an fsGroup) is accepted, as PostgreSQL
// accepts its key; the same modes on a file another user owns are not.
func TestKeyFileRootOwnedGroupRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.key")
	var key any
	for kind, k := range testKeys(t) {
		if kind == KeyTypeCSServerSecret {
			key = k
		}
	}
	if key == nil {
		t.Fatal("no server secret among the test keys")
	}
	if err := WriteKey(path, key); err != nil {
		t.Fatal(err)
	}
	rootOwned := syscall.Getuid() == 0 // files we create are ours
	for _, mode := range []uint32{0o440, 0o640} {
		syscall.Chmod(path, mode)
		_, err := LoadKey(path)
		if rootOwned && err != nil {
			t.Errorf("root-owned %04o: %v, want accepted", mode, err)
		}
		if !rootOwned && !errors.Is(err, ErrKeyPermissions) {
			t.Errorf("%04o owned by uid %d: %v, want ErrKeyPermissions", mode, syscall.Getuid(), err)
		}
	}
	if rootOwned {
		// Owned by another user, group-readable is refused again.
		if err := syscall.Chown(path, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		syscall.Chmod(path, 0o640)
		if _, err := LoadKey(path); !errors.Is(err, ErrKeyPermissions) {
			t.Errorf("0640 owned by uid 4242: %v, want ErrKeyPermissions", err)
		}
	}
}
