package mtls

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/milagro-go/milagro/pairing"
)

// testKeys issues one key of every kind from a fresh master share.
func testKeys(t testing.TB) map[string]any {
	t.Helper()
	m, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatalf("NewMasterShare: %v", err)
	}
	ck, err := combinedCS(m.IssueCSClientKey("alice@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	p2p, err := combinedP2P(m.IssueP2PKey("node-a"))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := combinedPermit(m.IssueTimePermit("alice@example.com", 20414))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ck.ExtractPIN(4711)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		KeyTypeMasterShare:    m,
		KeyTypeCSClientKey:    ck,
		KeyTypeCSServerSecret: combinedSecret(m.IssueCSServerSecret()),
		KeyTypeP2PKey:         p2p,
		KeyTypeTimePermit:     tp,
		KeyTypePINToken:       tok,
	}
}

func keyEqual(a, b any) bool {
	switch x := a.(type) {
	case *pairing.MasterShare:
		y, ok := b.(*pairing.MasterShare)
		return ok && x.Equal(y)
	case *pairing.CSClientKey:
		y, ok := b.(*pairing.CSClientKey)
		return ok && x.Equal(y)
	case *pairing.CSServerSecret:
		y, ok := b.(*pairing.CSServerSecret)
		return ok && x.Equal(y)
	case *pairing.P2PKey:
		y, ok := b.(*pairing.P2PKey)
		return ok && x.Equal(y)
	case *pairing.TimePermit:
		y, ok := b.(*pairing.TimePermit)
		return ok && x.Equal(y)
	case *pairing.PINToken:
		y, ok := b.(*pairing.PINToken)
		return ok && x.Equal(y)
	}
	return false
}

// secretHex returns forms of the last 32 bytes of the key's binary
// encoding, which are always part of the secret element (or scalar), as a
// message or String might show them.
func secretHex(t *testing.T, key any) []string {
	t.Helper()
	b, err := key.(interface{ MarshalBinary() ([]byte, error) }).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	tail := b[len(b)-32:]
	return []string{hex.EncodeToString(tail), strings.ToUpper(hex.EncodeToString(tail)), fmt.Sprint(tail)}
}

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	loaders := map[string]func(string) (any, error){
		KeyTypeMasterShare:    func(p string) (any, error) { return LoadMasterShare(p) },
		KeyTypeCSClientKey:    func(p string) (any, error) { return LoadCSClientKey(p) },
		KeyTypeCSServerSecret: func(p string) (any, error) { return LoadCSServerSecret(p) },
		KeyTypeP2PKey:         func(p string) (any, error) { return LoadP2PKey(p) },
		KeyTypeTimePermit:     func(p string) (any, error) { return LoadTimePermit(p) },
		KeyTypePINToken:       func(p string) (any, error) { return LoadPINToken(p) },
	}
	for kind, key := range testKeys(t) {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(strings.ToLower(kind), " ", "-")+".pem")
			if err := WriteKey(path, key); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
				t.Fatalf("mode %04o, want 0600", st.Mode().Perm())
			}
			data, _ := os.ReadFile(path)
			block, _ := pem.Decode(data)
			if block == nil || block.Type != kind {
				t.Fatalf("file does not hold a %s block:\n%s", kind, data)
			}
			info, _ := DescribeKey(key)
			if info.Identity != "" && block.Headers["Identity"] != info.Identity {
				t.Fatalf("Identity header %q, want %q", block.Headers["Identity"], info.Identity)
			}
			if kind == KeyTypeTimePermit && block.Headers["Day"] != "2025-11-22 (20414)" {
				t.Fatalf("Day header %q", block.Headers["Day"])
			}
			for _, load := range []func(string) (any, error){LoadKey, loaders[kind]} {
				got, err := load(path)
				if err != nil {
					t.Fatal(err)
				}
				if !keyEqual(key, got) {
					t.Fatalf("loaded key differs from the written one")
				}
				gi, _ := DescribeKey(got)
				if gi.String() != info.String() {
					t.Fatalf("loaded %v, want %v", gi, info)
				}
			}
			// Neither the file's description nor the key's String leaks it.
			for _, s := range []string{info.String(), fmt.Sprint(key), fmt.Sprintf("%+v %#v %x", key, key, key)} {
				for _, h := range secretHex(t, key) {
					if strings.Contains(s, h) {
						t.Fatalf("%q contains the secret", s)
					}
				}
			}
			// WriteKey never replaces a file; OverwriteKey does, keeping 0600.
			if err := WriteKey(path, key); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("WriteKey over an existing file: %v, want ErrExist", err)
			}
			os.Chmod(path, 0o644)
			if err := OverwriteKey(path, key); err != nil {
				t.Fatal(err)
			}
			if st, _ := os.Stat(path); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
				t.Fatalf("mode after OverwriteKey %04o, want 0600", st.Mode().Perm())
			}
			if got, err := LoadKey(path); err != nil || !keyEqual(key, got) {
				t.Fatalf("after OverwriteKey: %v", err)
			}
		})
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(m) != 0 {
		t.Fatalf("temporary files left behind: %v", m)
	}
}

func TestKeyFileWrongKind(t *testing.T) {
	dir := t.TempDir()
	keys := testKeys(t)
	path := filepath.Join(dir, "x.key")
	if err := WriteKey(path, keys[KeyTypeP2PKey]); err != nil {
		t.Fatal(err)
	}
	_, err := LoadCSClientKey(path)
	if !errors.Is(err, ErrKeyKind) {
		t.Fatalf("LoadCSClientKey of a P2P key: %v, want ErrKeyKind", err)
	}
	want := "file " + path + " holds a MILAGRO P2P KEY, want a MILAGRO CS CLIENT KEY"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q lacks %q", err, want)
	}
	for _, h := range secretHex(t, keys[KeyTypeP2PKey]) {
		if strings.Contains(err.Error(), h) {
			t.Fatal("error contains the secret")
		}
	}
	if _, err := LoadMasterShare(path); !errors.Is(err, ErrKeyKind) {
		t.Fatalf("LoadMasterShare of a P2P key: %v", err)
	}
	if _, err := DescribeKey("not a key"); err == nil {
		t.Fatal("DescribeKey of a string succeeded")
	}
	if _, err := MarshalKeyPEM((*pairing.CSClientKey)(nil)); err == nil {
		t.Fatal("MarshalKeyPEM of a nil key succeeded")
	}
}

func TestKeyFileCorrupt(t *testing.T) {
	keys := testKeys(t)
	good, err := MarshalKeyPEM(keys[KeyTypeCSClientKey])
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(good)
	reencode := func(typ string, body []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: body})
	}
	flipped := append([]byte(nil), block.Bytes...)
	flipped[len(flipped)-5] ^= 0x40
	serverBody, _ := keys[KeyTypeCSServerSecret].(*pairing.CSServerSecret).MarshalBinary()
	cases := map[string][]byte{
		"empty":           nil,
		"not PEM":         []byte("hello world\n"),
		"truncated PEM":   good[:len(good)/2],
		"bad base64":      bytes.Replace(good, []byte("\n"), []byte("\n!!!!\n"), 2),
		"foreign type":    reencode("PRIVATE KEY", block.Bytes),
		"empty body":      reencode(KeyTypeCSClientKey, nil),
		"truncated body":  reencode(KeyTypeCSClientKey, block.Bytes[:len(block.Bytes)-1]),
		"trailing byte":   reencode(KeyTypeCSClientKey, append(append([]byte(nil), block.Bytes...), 0)),
		"flipped bit":     reencode(KeyTypeCSClientKey, flipped),
		"bad tag":         reencode(KeyTypeCSClientKey, append([]byte{0x7f}, block.Bytes[1:]...)),
		"body-type clash": reencode(KeyTypeCSClientKey, serverBody),
		"two blocks":      append(append([]byte(nil), good...), good...),
		"trailing text":   append(append([]byte(nil), good...), "junk\n"...),
	}
	dir := t.TempDir()
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseKeyPEM(data); !errors.Is(err, ErrKeyFile) {
				t.Fatalf("ParseKeyPEM: %v, want ErrKeyFile", err)
			}
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadCSClientKey(path)
			if !errors.Is(err, ErrKeyFile) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadCSClientKey: %v, want ErrKeyFile naming the file", err)
			}
			for _, h := range secretHex(t, keys[KeyTypeCSClientKey]) {
				if strings.Contains(err.Error(), h) {
					t.Fatalf("error %q contains the secret", err)
				}
			}
		})
	}
	// Text before the block is allowed (comments); headers are not authoritative.
	withText := append([]byte("# alice's key\n"), good...)
	withText = bytes.Replace(withText, []byte("Identity: alice@example.com"), []byte("Identity: mallory"), 1)
	k, err := ParseKeyPEM(withText)
	if err != nil {
		t.Fatal(err)
	}
	if k.(*pairing.CSClientKey).ID() != "alice@example.com" {
		t.Fatalf("identity %q: the header overrode the body", k.(*pairing.CSClientKey).ID())
	}
	if _, err := LoadKey(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := LoadKey(dir); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("directory: %v", err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, bytes.Repeat([]byte("A"), maxKeyFileSize+10), 0o600)
	if _, err := LoadKey(big); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("oversized file: %v", err)
	}
}

func TestKeyFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := t.TempDir()
	for kind, key := range testKeys(t) {
		path := filepath.Join(dir, strings.ReplaceAll(kind, " ", "_"))
		if err := WriteKey(path, key); err != nil {
			t.Fatal(err)
		}
		// (0640 and 0440 are accepted when root owns the file:
		// TestKeyFileRootOwnedGroupRead.)
		for _, mode := range []os.FileMode{0o604, 0o620, 0o660, 0o644} {
			os.Chmod(path, mode)
			_, err := LoadKey(path)
			if kind == KeyTypeTimePermit {
				if err != nil {
					t.Errorf("%s with mode %04o: %v (permits are not secret enough to refuse)", kind, mode, err)
				}
				continue
			}
			if !errors.Is(err, ErrKeyPermissions) || !strings.Contains(err.Error(), "chmod 600 "+path) || !strings.Contains(err.Error(), "defaultMode: 0400") || !strings.Contains(err.Error(), "fsGroup") {
				t.Errorf("%s with mode %04o: %v, want ErrKeyPermissions with a hint", kind, mode, err)
			}
		}
		os.Chmod(path, 0o400)
		if _, err := LoadKey(path); err != nil {
			t.Errorf("%s with mode 0400: %v", kind, err)
		}
	}
}

func TestKeyFileOddIdentity(t *testing.T) {
	m, _ := pairing.NewMasterShare(rand.Reader)
	for _, id := range []string{"colon: x", "in side", strings.Repeat("é", 500), `say "hi"`, "nb\u00a0sp"} {
		k, err := m.IssueCSClientKey(id)
		if err != nil {
			t.Fatal(err)
		}
		data, err := MarshalKeyPEM(k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseKeyPEM(data)
		if err != nil {
			t.Fatalf("%q: %v\n%s", id, err, data)
		}
		if got.(*pairing.CSClientKey).ID() != id {
			t.Fatalf("identity %q, want %q", got.(*pairing.CSClientKey).ID(), id)
		}
	}
}

// FuzzParseKeyPEM: any input either fails with ErrKeyFile or gives a key
// that re-encodes to a file that parses to the same key.
func FuzzParseKeyPEM(f *testing.F) {
	for _, key := range testKeys(f) {
		data, err := MarshalKeyPEM(key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)-40])
		block, _ := pem.Decode(data)
		f.Add(pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes[:len(block.Bytes)/2]}))
	}
	f.Add([]byte("-----BEGIN MILAGRO P2P KEY-----\n\n-----END MILAGRO P2P KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseKeyPEM(data)
		if err != nil {
			if !errors.Is(err, ErrKeyFile) {
				t.Fatalf("error not wrapping ErrKeyFile: %v", err)
			}
			return
		}
		info, err := DescribeKey(key)
		if err != nil {
			t.Fatal(err)
		}
		again, err := MarshalKeyPEM(key)
		if err != nil {
			t.Fatalf("parsed %v does not re-encode: %v", info, err)
		}
		key2, err := ParseKeyPEM(again)
		if err != nil {
			t.Fatal(err)
		}
		if !keyEqual(key, key2) {
			t.Fatalf("%v: re-encoded key differs", info)
		}
		if i2, _ := DescribeKey(key2); i2.String() != info.String() {
			t.Fatalf("re-encoded %v, want %v", i2, info)
		}
	})
}
