package ciphersuite

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func gcmFor(t testing.TB, key []byte) cipher.AEAD {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tls12PRF is the RFC 5246 §5 PRF, written independently of package
// handshake for this cross-check.
func tls12PRF(h crypto.Hash, secret []byte, label string, seed []byte, n int) []byte {
	s := append([]byte(label), seed...)
	mac := hmac.New(h.New, secret)
	mac.Write(s)
	a := mac.Sum(nil)
	var out []byte
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		mac.Write(s)
		out = mac.Sum(out)
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(nil)
	}
	return out[:n]
}

// recConn records everything written through a net.Conn.
type recConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *recConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *recConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.out.Bytes()...)
}

type record struct {
	typ     uint8
	version uint16
	frag    []byte
}

func splitRecords(t *testing.T, b []byte) []record {
	var rs []record
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("truncated record header")
		}
		n := int(binary.BigEndian.Uint16(b[3:5]))
		if len(b) < 5+n {
			t.Fatalf("truncated record")
		}
		rs = append(rs, record{b[0], binary.BigEndian.Uint16(b[1:3]), b[5 : 5+n]})
		b = b[5+n:]
	}
	return rs
}

func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "crosscheck"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"crosscheck"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestRecordCrossCheckCryptoTLS runs a TLS 1.2 connection between Go's
// crypto/tls client and server with an ECDHE_ECDSA suite of each of our
// AEADs, recovers the keys from the key log, and checks that our
// RecordCipher opens the application data records crypto/tls wrote and
// seals byte-identical records.
func TestRecordCrossCheckCryptoTLS(t *testing.T) {
	cert := selfSigned(t)
	cases := []struct {
		tlsSuite uint16
		ours     *Suite
	}{
		{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ByID(0xD001)},
		{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, ByID(0xD002)},
		{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, ByID(0xCCAC)},
	}
	for _, tc := range cases {
		t.Run(tc.ours.Name, func(t *testing.T) {
			c1, c2 := net.Pipe()
			cc, sc := &recConn{Conn: c1}, &recConn{Conn: c2}
			var keylog bytes.Buffer
			client := tls.Client(cc, &tls.Config{
				InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
				CipherSuites: []uint16{tc.tlsSuite}, KeyLogWriter: &keylog,
			})
			server := tls.Server(sc, &tls.Config{
				Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12,
				CipherSuites: []uint16{tc.tlsSuite},
			})
			msgC, msgS := []byte("hello from crypto/tls client"), []byte("and the server's reply")
			errc := make(chan error, 1)
			go func() {
				buf := make([]byte, len(msgC))
				if _, err := io.ReadFull(server, buf); err != nil {
					errc <- err
					return
				}
				_, err := server.Write(msgS)
				errc <- err
			}()
			if _, err := client.Write(msgC); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len(msgS))
			if _, err := io.ReadFull(client, buf); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if got := client.ConnectionState().CipherSuite; got != tc.tlsSuite {
				t.Fatalf("negotiated %x", got)
			}
			c1.Close()
			c2.Close()

			// Key log line: CLIENT_RANDOM <client_random> <master>.
			f := strings.Fields(keylog.String())
			if len(f) != 3 || f[0] != "CLIENT_RANDOM" {
				t.Fatalf("key log %q", keylog.String())
			}
			clientRandom, _ := hex.DecodeString(f[1])
			master, _ := hex.DecodeString(f[2])
			srv := splitRecords(t, sc.bytes())
			// ServerHello: handshake header(4) version(2) random(32).
			if srv[0].typ != 22 || srv[0].frag[0] != 2 {
				t.Fatal("first server record is not a ServerHello")
			}
			serverRandom := srv[0].frag[6:38]

			s := tc.ours
			kl, ivl := s.KeyLen(), s.IVLen()
			kb := tls12PRF(s.Hash, master, "key expansion", append(append([]byte(nil), serverRandom...), clientRandom...), 2*kl+2*ivl)
			ck, sk, civ, siv := kb[:kl], kb[kl:2*kl], kb[2*kl:2*kl+ivl], kb[2*kl+ivl:]

			check := func(dir string, recs []record, key, iv, want []byte) {
				t.Helper()
				rc, err := NewRecordCipher(s, key, iv)
				if err != nil {
					t.Fatal(err)
				}
				var app []record
				for _, r := range recs {
					if r.typ == 23 {
						app = append(app, r)
					}
				}
				if len(app) != 1 {
					t.Fatalf("%s: %d application data records", dir, len(app))
				}
				// Finished is record 0 after ChangeCipherSpec; data is 1.
				got, err := rc.Open(nil, 1, 23, app[0].version, app[0].frag)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: Open of crypto/tls record: %q, %v", dir, got, err)
				}
				if sealed := rc.Seal(nil, 1, 23, 0x0303, want); !bytes.Equal(sealed, app[0].frag) {
					t.Fatalf("%s: our record\n%x\ndiffers from crypto/tls's\n%x", dir, sealed, app[0].frag)
				}
			}
			check("client", splitRecords(t, cc.bytes()), ck, civ, msgC)
			check("server", srv, sk, siv, msgS)
		})
	}
}

func ExampleNewRecordCipher() {
	s := ByName("PSK_WITH_CHACHA20_POLY1305_SHA256")
	c, _ := NewRecordCipher(s, make([]byte, s.KeyLen()), make([]byte, s.IVLen()))
	rec := c.Seal(nil, 0, 23, 0x0303, []byte("hi"))
	pt, err := c.Open(nil, 0, 23, 0x0303, rec)
	fmt.Println(len(rec), string(pt), err)
	// Output: 18 hi <nil>
}
