package pairing

import "testing"

// BenchmarkPermitDecode is an endpoint's daily work on its permit shares:
// each D-TA's share decoded from its key-file encoding (every check a peer's
// bytes get), then the shares combined. Per share: decode; per permit:
// decode-and-combine of three shares.
func BenchmarkPermitDecode(b *testing.B) {
	f := newFixture(b, seeded("permit-bench"))
	var encs [][]byte
	for _, m := range f.shares {
		p, err := m.IssueTimePermit("alice@example.com", fxDay)
		if err != nil {
			b.Fatal(err)
		}
		enc, err := p.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		encs = append(encs, enc)
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var tp TimePermit
			if err := tp.UnmarshalBinary(encs[i%len(encs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-combine-3", func(b *testing.B) {
		b.ReportAllocs()
		ps := make([]*TimePermit, len(encs))
		for i := 0; i < b.N; i++ {
			for j, enc := range encs {
				ps[j] = new(TimePermit)
				if err := ps[j].UnmarshalBinary(enc); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := CombineTimePermits(ps...); err != nil {
				b.Fatal(err)
			}
		}
	})
}
