package main

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseHead: `ta audit --verify --head N:HASH` takes operator input;
// whatever it is, the parser returns an error or a head that prints back
// to the same text, never panics.
func FuzzParseHead(f *testing.F) {
	f.Add("412:" + strings.Repeat("ab", 32))
	f.Add("0:" + strings.Repeat("00", 32))
	f.Add("1:zz")
	f.Add(":")
	f.Add("-1:" + strings.Repeat("ab", 32))
	f.Add("99999999999999999999:" + strings.Repeat("ab", 32))
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseHead(s)
		if err != nil {
			return
		}
		if h.N < 1 || len(h.Hash) != 32 {
			t.Fatalf("%q: accepted %+v", s, h)
		}
		n, hs, _ := strings.Cut(s, ":")
		if v, _ := strconv.ParseInt(n, 10, 64); v != h.N {
			t.Fatalf("%q: number %d", s, h.N)
		}
		if b, _ := hex.DecodeString(hs); !bytes.Equal(b, h.Hash) {
			t.Fatalf("%q: hash %x", s, h.Hash)
		}
	})
}
