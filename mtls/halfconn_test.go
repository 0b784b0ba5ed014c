package mtls

import (
	"bytes"
	"math"
	"testing"
)

// TestHalfConnNumbering: a sealed record opens only at the sequence number
// it was sealed under; seal and open each number one record, a failed open
// numbers none, and changeCipher restarts the count at zero.
func TestHalfConnNumbering(t *testing.T) {
	w := &halfConn{version: versionTLS12}
	r := &halfConn{version: versionTLS12}
	if w.spare() != math.MaxUint64 || w.protected() {
		t.Fatal("an unprotected direction must have no numbering limit")
	}
	plain := w.seal(nil, recordTypeHandshake, []byte("hello"))
	if w.seq != 0 || !bytes.Equal(plain[recordHeaderLen:], []byte("hello")) {
		t.Fatalf("unprotected seal: seq %d, record %x", w.seq, plain)
	}

	w.changeCipher(newTestCipher(t, keyC2S))
	r.changeCipher(newTestCipher(t, keyC2S))
	var recs [][]byte
	for i := 0; i < 3; i++ {
		recs = append(recs, w.seal(nil, recordTypeApplicationData, []byte{byte(i)}))
	}
	if w.seq != 3 {
		t.Fatalf("write seq %d after 3 records, want 3", w.seq)
	}
	open := func(rec []byte) ([]byte, error) {
		return r.open(nil, rec[0], versionTLS12, rec[recordHeaderLen:])
	}
	// Out of order: record 1 at number 0 must fail and not advance.
	if _, err := open(recs[1]); err == nil {
		t.Fatal("record 1 opened at sequence number 0")
	}
	if r.seq != 0 {
		t.Fatalf("a failed open advanced seq to %d", r.seq)
	}
	for i, rec := range recs {
		got, err := open(rec)
		if err != nil || len(got) != 1 || got[0] != byte(i) {
			t.Fatalf("record %d: %x, %v", i, got, err)
		}
	}
	if r.seq != 3 {
		t.Fatalf("read seq %d after 3 records, want 3", r.seq)
	}

	r.changeCipher(newTestCipher(t, keyS2C))
	if r.seq != 0 {
		t.Fatalf("changeCipher left seq at %d", r.seq)
	}
	r.seq = math.MaxUint64 - 1
	if r.spare() != 1 {
		t.Fatalf("spare %d at 2^64-2, want 1", r.spare())
	}
}
