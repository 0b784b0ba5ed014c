package pairing

import (
	"testing"

	"github.com/cloudflare/circl/ecc/bls12381"
)

func BenchmarkPrimitives(b *testing.B) {
	p := H1(DomainCS, []byte("x"))
	q := H2(DomainCS, []byte("x"))
	s := sc(0)
	s.Random(seeded("bench"))
	pb, qb := EncodeG1(p), EncodeG2(q)
	g := bls12381.Pair(p, q)
	b.Run("G1 mul", func(b *testing.B) {
		var r bls12381.G1
		for b.Loop() {
			r.ScalarMult(s, p)
		}
	})
	b.Run("G2 mul", func(b *testing.B) {
		var r bls12381.G2
		for b.Loop() {
			r.ScalarMult(s, q)
		}
	})
	b.Run("GT exp", func(b *testing.B) {
		var r bls12381.Gt
		for b.Loop() {
			r.Exp(g, s)
		}
	})
	b.Run("pairing", func(b *testing.B) {
		for b.Loop() {
			bls12381.Pair(p, q)
		}
	})
	b.Run("2-pairing product (prepared G2)", func(b *testing.B) {
		for b.Loop() {
			bls12381.ProdPairFrac([]*bls12381.G1{p, p}, []*bls12381.G2{q, q}, []int{1, 1})
		}
	})
	b.Run("H1", func(b *testing.B) {
		for b.Loop() {
			H1(DomainCS, []byte("alice@example.com"))
		}
	})
	b.Run("H2", func(b *testing.B) {
		for b.Loop() {
			H2(DomainP2P, []byte("node-b"))
		}
	})
	b.Run("Hq", func(b *testing.B) {
		msg := make([]byte, 300)
		for b.Loop() {
			Hq(DomainCS, msg)
		}
	})
	b.Run("DecodeG1", func(b *testing.B) {
		for b.Loop() {
			DecodeG1(pb)
		}
	})
	b.Run("DecodeG2", func(b *testing.B) {
		for b.Loop() {
			DecodeG2(qb)
		}
	})
}

func BenchmarkCS(b *testing.B) {
	f := newFixture(b, seeded("bench-cs"))
	rnd := seeded("bench-cs-rand")
	c, err := NewCSClient(f.alice, f.permit)
	if err != nil {
		b.Fatal(err)
	}
	hello, chs, _ := c.Hello(rnd, f.now, "")
	shs, err := f.server.Accept(rnd, hello)
	if err != nil {
		b.Fatal(err)
	}
	w := shs.W()
	r, _, _ := chs.Finish(rnd, w)
	b.Run("NewCSClient (permit, caches e(K,Q))", func(b *testing.B) {
		for b.Loop() {
			NewCSClient(f.alice, f.permit)
		}
	})
	b.Run("client Hello", func(b *testing.B) {
		for b.Loop() {
			c.Hello(rnd, f.now, "")
		}
	})
	b.Run("server Verify", func(b *testing.B) {
		for b.Loop() {
			if err := f.server.Verify(hello); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("server Accept (verify+W)", func(b *testing.B) {
		for b.Loop() {
			f.server.Accept(rnd, hello)
		}
	})
	b.Run("client Finish", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			_, hs, _ := c.Hello(rnd, f.now, "")
			b.StartTimer()
			hs.Finish(rnd, w)
		}
	})
	b.Run("server Finish", func(b *testing.B) {
		for b.Loop() {
			hs := *shs
			if _, err := hs.Finish(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CS client total", func(b *testing.B) {
		cpuLoop(b, func() {
			_, hs, _ := c.Hello(rnd, f.now, "")
			hs.Finish(rnd, w)
		})
	})
	b.Run("CS server total (new identity: hashes A, T_d)", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			f.server.points.reset()
			b.StartTimer()
			hs, err := f.server.Accept(rnd, hello)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := hs.Finish(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CS server total", func(b *testing.B) {
		cpuLoop(b, func() {
			hs, err := f.server.Accept(rnd, hello)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := hs.Finish(r); err != nil {
				b.Fatal(err)
			}
		})
	})
}

func BenchmarkP2P(b *testing.B) {
	f := newFixture(b, seeded("bench-p2p"))
	rnd := seeded("bench-p2p-rand")
	ps, _ := NewP2PServer(f.nodeA)
	pc, _ := NewP2PClient(f.nodeB)
	hs, _ := ps.Start(rnd)
	xS := hs.X()
	wC, yC, _, err := pc.Respond(rnd, "node-a", "node-a", xS)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("server Start", func(b *testing.B) {
		for b.Loop() {
			ps.Start(rnd)
		}
	})
	b.Run("server Finish", func(b *testing.B) {
		for b.Loop() {
			h := *hs
			if _, err := h.Finish("node-b", wC, yC); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("P2P client total", func(b *testing.B) {
		cpuLoop(b, func() {
			if _, _, _, err := pc.Respond(rnd, "node-a", "node-a", xS); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("P2P server total (new peer: hashes B_C)", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			ps.peers.reset()
			b.StartTimer()
			h, _ := ps.Start(rnd)
			if _, err := h.Finish("node-b", wC, yC); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("P2P server total", func(b *testing.B) {
		cpuLoop(b, func() {
			h, _ := ps.Start(rnd)
			if _, err := h.Finish("node-b", wC, yC); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// BenchmarkFastPair measures the circl engine's Miller lines, pairing
// products and GT exponentiation.
func BenchmarkFastPair(b *testing.B) {
	p := H1(DomainCS, []byte("x"))
	q := H2(DomainCS, []byte("x"))
	lq := prepareG2(q)
	s := sc(0)
	s.Random(seeded("bench"))
	g := gtFromCircl(bls12381.Pair(p, q))
	b.Run("prepareG2", func(b *testing.B) {
		for b.Loop() {
			prepareG2(q)
		}
	})
	b.Run("pairing (prepared G2)", func(b *testing.B) {
		for b.Loop() {
			multiPair([]*bls12381.G1{p}, []*g2Lines{lq})
		}
	})
	b.Run("2-pairing product", func(b *testing.B) {
		for b.Loop() {
			multiPair([]*bls12381.G1{p, p}, []*g2Lines{lq, lq})
		}
	})
	b.Run("GT exp (cyclotomic)", func(b *testing.B) {
		for b.Loop() {
			gtExp(&g, s)
		}
	})
}

func BenchmarkMulPublic(b *testing.B) {
	p := H1(DomainCS, []byte("x"))
	s := sc(0)
	s.Random(seeded("bench"))
	var r bls12381.G1
	for b.Loop() {
		mulPublic(&r, s, p)
	}
}

// BenchmarkEngineMul compares the engine's multiplications by a 255-bit
// scalar: constant-time (secret scalars), public (variable base) and the
// comb of a prepared point (A′ of a proven CS identity).
func BenchmarkEngineMul(b *testing.B) {
	p := eG1From(H1(DomainCS, []byte("x")))
	s := sc(0)
	s.Random(seeded("bench"))
	var r eG1
	b.Run("constant-time", func(b *testing.B) {
		for b.Loop() {
			eMul(&r, s, p)
		}
	})
	b.Run("public", func(b *testing.B) {
		for b.Loop() {
			eMulPublic(&r, s, p)
		}
	})
	b.Run("public, prepared", func(b *testing.B) {
		t := eTableOf(p)
		for b.Loop() {
			eMulTable(&r, s, t)
		}
	})
	b.Run("prepare", func(b *testing.B) {
		for b.Loop() {
			eTableOf(p)
		}
	})
}
