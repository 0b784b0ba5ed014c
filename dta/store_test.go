package dta

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

func TestStoreAppendOnlyModeMigrationsBinding(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateCode(dtawire.KindClient, "a", time.Hour, "t"); !errors.Is(err, ErrNotBound) {
		t.Fatalf("code before binding: %v", err)
	}
	m, _ := pairing.NewMasterShare(rand.Reader)
	if _, err := st.Bind(m); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateCode(dtawire.KindClient, "a", time.Hour, "t"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit SET result='forged'`, `DELETE FROM audit`} {
		if _, err := st.db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st.Close()
	for _, f := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(f); err == nil && fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v", f, fi.Mode().Perm())
		}
	}
	// Reopening applies no migration twice and keeps the binding.
	st, err = OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	st.db.QueryRow(`SELECT COUNT(*) FROM migrations`).Scan(&n)
	if n != schemaVersions {
		t.Fatalf("%d migrations recorded, want %d", n, schemaVersions)
	}
	if fp, err := st.Fingerprint(); err != nil || fp != m.Fingerprint() {
		t.Fatalf("fingerprint after reopen: %v %v", fp, err)
	}
	other, _ := pairing.NewMasterShare(rand.Reader)
	if _, err := st.Bind(other); !errors.Is(err, ErrWrongMaster) {
		t.Fatalf("another master share: %v", err)
	}
	// No secret is stored in the clear.
	var sealed []byte
	st.db.QueryRow(`SELECT sealed FROM codes`).Scan(&sealed)
	if len(sealed) != 32+dtawire.SecretSize+16 {
		t.Fatalf("sealed code secret has %d bytes", len(sealed))
	}
	// A group-readable store is refused.
	os.Chmod(path, 0o640)
	if _, err := OpenStore(path, nil); err == nil {
		t.Fatal("a group-readable store was opened")
	}
	os.Chmod(path, 0o600)
}

func TestSealBindsRow(t *testing.T) {
	m, _ := pairing.NewMasterShare(rand.Reader)
	k, err := sealKey(m)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, dtawire.SecretSize)
	rand.Read(secret)
	s, err := seal(rand.Reader, k.PublicKey(), secret, "code:a")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := unseal(k, s, "code:a"); err != nil || string(got) != string(secret) {
		t.Fatalf("unseal: %v", err)
	}
	if _, err := unseal(k, s, "code:b"); err == nil {
		t.Fatal("a sealed secret opened for another row")
	}
	other, _ := pairing.NewMasterShare(rand.Reader)
	k2, _ := sealKey(other)
	if _, err := unseal(k2, s, "code:a"); err == nil {
		t.Fatal("a sealed secret opened with another master share")
	}
}
