package mtls_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

const benchChunk = 16 << 10 // one full record per Write

var (
	certOnce sync.Once
	benchCrt tls.Certificate
)

// selfSigned returns a throwaway P-256 certificate for the crypto/tls side.
func selfSigned(b *testing.B) tls.Certificate {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "bench"},
			DNSNames:     []string{"bench"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			b.Fatal(err)
		}
		benchCrt = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return benchCrt
}

func stdConfigs(b *testing.B, suite uint16) (client, server *tls.Config) {
	server = &tls.Config{
		Certificates: []tls.Certificate{selfSigned(b)},
		MaxVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{suite},
	}
	client = &tls.Config{
		InsecureSkipVerify: true,
		MaxVersion:         tls.VersionTLS12,
		CipherSuites:       []uint16{suite},
	}
	return client, server
}

// loopback returns the two ends of a fresh loopback TCP connection.
func loopback(b *testing.B) (client, server net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server = <-ch
	if server == nil {
		b.Fatal("accept failed")
	}
	return client, server
}

// benchBulk writes b.N 16 KiB chunks from w to r (already handshaken, or
// handshaking on first use) and waits until r has read them all.
func benchBulk(b *testing.B, w io.Writer, r io.Reader) { benchBulkChunk(b, w, r, benchChunk) }

func benchBulkChunk(b *testing.B, w io.Writer, r io.Reader, chunk int) {
	buf := make([]byte, chunk)
	// Warm up (and let crypto/tls's dynamic record sizing reach full records).
	const warm = 2 << 20
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, r, warm)
		done <- err
	}()
	for i := 0; i < warm/chunk; i++ {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	total := int64(b.N) * int64(chunk)
	go func() {
		_, err := io.CopyN(io.Discard, r, total)
		done <- err
	}()
	b.SetBytes(int64(chunk))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}

// BenchmarkThroughput compares bulk transfer over loopback TCP: mtls PSK
// suites against crypto/tls TLS 1.2 ECDHE-ECDSA with the same AEAD.
func BenchmarkThroughput(b *testing.B) { benchThroughput(b, benchChunk) }

// BenchmarkThroughput64K is BenchmarkThroughput with 64 KiB Writes (mtls
// seals several records per system call).
func BenchmarkThroughput64K(b *testing.B) { benchThroughput(b, 64<<10) }

func benchThroughput(b *testing.B, chunk int) {
	for _, tc := range []struct {
		name     string
		mtlsID   uint16
		stdSuite uint16
	}{
		{"AES-128-GCM", 0x00A8, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{"ChaCha20-Poly1305", 0xCCAB, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
	} {
		b.Run(tc.name+"/mtls", func(b *testing.B) {
			ccfg, scfg := pskConfigs(tc.mtlsID)
			c1, c2 := loopback(b)
			cc, sc := mtls.Client(c1, ccfg), mtls.Server(c2, scfg)
			defer cc.Close()
			defer sc.Close()
			hsBoth(b, cc.Handshake, sc.Handshake)
			benchBulkChunk(b, cc, sc, chunk)
		})
		b.Run(tc.name+"/crypto-tls", func(b *testing.B) {
			ccfg, scfg := stdConfigs(b, tc.stdSuite)
			c1, c2 := loopback(b)
			cc, sc := tls.Client(c1, ccfg), tls.Server(c2, scfg)
			defer cc.Close()
			defer sc.Close()
			hsBoth(b, cc.Handshake, sc.Handshake)
			benchBulkChunk(b, cc, sc, chunk)
		})
	}
}

func hsBoth(b *testing.B, client, server func() error) {
	errc := make(chan error, 1)
	go func() { errc <- server() }()
	if err := client(); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHandshake measures full handshakes (TCP connect included) over
// loopback, with crypto/tls ECDHE-ECDSA for scale.
func BenchmarkHandshake(b *testing.B) {
	for _, tc := range []struct {
		name string
		id   uint16
	}{
		{"PSK", 0x00A8},
		{"ECDHE_PSK-X25519", 0xD001},
	} {
		b.Run(tc.name+"/mtls", func(b *testing.B) {
			ccfg, scfg := pskConfigs(tc.id)
			l, err := mtls.Listen("tcp", "127.0.0.1:0", scfg)
			if err != nil {
				b.Fatal(err)
			}
			benchHandshakes(b, l, func(addr string) (io.Closer, error) {
				return mtls.Dial("tcp", addr, ccfg)
			}, func(c net.Conn) error { return c.(*mtls.Conn).Handshake() })
		})
	}
	b.Run("ECDHE-ECDSA-P256/crypto-tls", func(b *testing.B) {
		ccfg, scfg := stdConfigs(b, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
		l, err := tls.Listen("tcp", "127.0.0.1:0", scfg)
		if err != nil {
			b.Fatal(err)
		}
		benchHandshakes(b, l, func(addr string) (io.Closer, error) {
			return tls.Dial("tcp", addr, ccfg)
		}, func(c net.Conn) error { return c.(*tls.Conn).Handshake() })
	})
}

func benchHandshakes(b *testing.B, l net.Listener, dial func(string) (io.Closer, error), serverHS func(net.Conn) error) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			serverHS(c)
			c.Close()
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c, err := dial(l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hs/s")
	l.Close()
	wg.Wait()
}
