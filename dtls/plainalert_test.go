package dtls

import (
	"bytes"
	"testing"
)

// cidAlert is the epoch-0 alert as pion v3.1.15 writes it with a CID of n bytes.
func cidAlert(n int, level, desc byte) []byte {
	b := []byte{contentCID, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 7}
	b = append(b, bytes.Repeat([]byte{0xc1}, n)...)
	return append(b, 0, 3, level, desc, contentAlert)
}

func TestPlainAlert(t *testing.T) {
	want := []byte{contentAlert, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 7, 0, 2, 2, 80}
	for _, n := range []int{0, 1, 8, 255} {
		got, ok := plainAlert(cidAlert(n, 2, 80))
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("cid %d bytes: %x %v, want %x", n, got, ok, want)
		}
	}
	encrypted := cidAlert(8, 2, 80)
	encrypted[4] = 1 // epoch 1: protected, the CID format is right
	plain := want
	notAlert := cidAlert(8, 2, 80)
	notAlert[len(notAlert)-1] = 22
	padded := append(cidAlert(8, 2, 80), 0)
	badLen := cidAlert(8, 2, 80)
	badLen[recordHeaderLen+8+1] = 4
	for name, b := range map[string][]byte{
		"epoch 1": encrypted, "plain alert": plain, "inner type handshake": notAlert,
		"padded": padded, "length": badLen, "short": cidAlert(0, 2, 80)[:15], "empty": nil,
		"cid too long": cidAlert(256, 2, 80),
	} {
		if got, ok := plainAlert(b); ok {
			t.Errorf("%s: rewritten to %x", name, got)
		}
	}
}

func FuzzPlainAlert(f *testing.F) {
	f.Add(cidAlert(8, 2, 40))
	f.Add(cidAlert(0, 1, 0))
	f.Add([]byte{contentAlert, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 7, 0, 2, 2, 80})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, ok := plainAlert(b)
		if !ok {
			return
		}
		if len(out) != recordHeaderLen+4 || out[0] != contentAlert || out[3] != 0 || out[4] != 0 ||
			out[11] != 0 || out[12] != 2 || !bytes.Equal(out[1:11], b[1:11]) || !bytes.Equal(out[13:], b[len(b)-3:len(b)-1]) {
			t.Fatalf("%x → %x", b, out)
		}
	})
}
