package pairing

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

// IssueTimePermitShare gives the point of IssueTimePermit's permit, on
// whichever engine this build uses (the CGO_ENABLED=0 run covers circl).
func TestIssueTimePermitShareMatches(t *testing.T) {
	m, err := NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alice@example.com", "b", "svc-7.prod.example.net"} {
		for _, day := range []uint64{1, 20_000, 20_001, 1 << 40} {
			want, err := m.IssueTimePermit(id, day)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.IssueTimePermitShare(id, day)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, eBytesG1(&want.e)) {
				t.Fatalf("%s day %d (%s engine): share %x, permit point %x", id, day, Engine(), got, eBytesG1(&want.e))
			}
			if _, err := DecodeG1(got); err != nil {
				t.Fatalf("%s day %d: %v", id, day, err)
			}
		}
	}
	if _, err := m.IssueTimePermitShare("alice@example.com", 0); !errors.Is(err, ErrPermitDay) {
		t.Fatalf("day 0: %v", err)
	}
	if _, err := m.IssueTimePermitShare("", 1); err == nil {
		t.Fatal("empty identity accepted")
	}
	if _, err := new(MasterShare).IssueTimePermitShare("alice@example.com", 1); !errors.Is(err, ErrIdentity) {
		t.Fatalf("zero master share: %v", err)
	}
}

// Combining skips the subgroup check of permits decoded or computed here,
// never of a zeroized one: a share wiped by Zeroize is refused, also next
// to a good share.
func TestCombineRefusesZeroizedPermit(t *testing.T) {
	var shares []*TimePermit
	for range 2 {
		m, err := NewMasterShare(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p, err := m.IssueTimePermit("alice@example.com", 20_000)
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, p)
	}
	enc, err := shares[1].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var decoded TimePermit
	if err := decoded.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if _, err := CombineTimePermits(shares[0], &decoded); err != nil {
		t.Fatalf("issued + decoded shares: %v", err)
	}
	decoded.Zeroize()
	if _, err := CombineTimePermits(shares[0], &decoded); !errors.Is(err, ErrIdentity) {
		t.Fatalf("a zeroized share combined: %v", err)
	}
	if _, err := decoded.MarshalBinary(); !errors.Is(err, ErrIdentity) {
		t.Fatalf("a zeroized permit encoded: %v", err)
	}
}
