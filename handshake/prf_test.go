package handshake

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

// TestPRFVectors checks the PRF against testdata/prf_vectors.txt: the
// published IETF TLS-list vectors for SHA-256 and SHA-384 plus vectors for
// our labels computed with OpenSSL's TLS1-PRF.
func TestPRFVectors(t *testing.T) {
	f, err := os.Open("testdata/prf_vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 5 {
			t.Fatalf("bad line %q", line)
		}
		h := map[string]crypto.Hash{"SHA256": crypto.SHA256, "SHA384": crypto.SHA384}[fs[0]]
		secret, _ := hex.DecodeString(fs[1])
		label := strings.ReplaceAll(fs[2], "_", " ")
		seed, _ := hex.DecodeString(fs[3])
		want, _ := hex.DecodeString(fs[4])
		if got := PRF(h, secret, label, seed, len(want)); !bytes.Equal(got, want) {
			t.Errorf("PRF(%s, %q) = %x, want %x", fs[0], label, got, want)
		}
		n++
	}
	if n < 4 {
		t.Fatalf("only %d vectors", n)
	}
}

// TestKeyBlockCut checks the order in which the key block is cut (client
// key, server key, client IV, server IV) against the key_expansion vector.
func TestKeyBlockCut(t *testing.T) {
	master := bytes.Repeat([]byte{'m'}, 48)
	cr, sr := bytes.Repeat([]byte{'c'}, 32), bytes.Repeat([]byte{'s'}, 32)
	block, _ := hex.DecodeString(vectorOutput(t, "key_expansion"))
	km := keysFromMasterSecret(ciphersuite.ByID(0x00A8), master, cr, sr) // AES-128-GCM: 16+16+4+4
	got := bytes.Join([][]byte{km.clientKey, km.serverKey, km.clientIV, km.serverIV}, nil)
	if !bytes.Equal(got, block) {
		t.Fatalf("key block %x, want %x", got, block)
	}
	km = keysFromMasterSecret(ciphersuite.ByID(0xCCAB), master, cr, sr) // ChaCha: 32+32+12+12
	if len(km.clientKey) != 32 || len(km.serverIV) != 12 || !bytes.Equal(km.clientKey[:16], block[:16]) {
		t.Fatal("ChaCha20 key block cut")
	}
}

func vectorOutput(t *testing.T, label string) string {
	data, err := os.ReadFile("testdata/prf_vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if fs := strings.Fields(line); len(fs) == 5 && fs[2] == label {
			return fs[4]
		}
	}
	t.Fatalf("no vector for %s", label)
	return ""
}

// TestPRFAgainstCryptoTLS cross-checks the PRF with crypto/tls: a TLS 1.2
// handshake logs its master secret, and ExportKeyingMaterial (RFC 5705) is
// PRF(master, label, client_random ‖ server_random ‖ uint16(len(ctx)) ‖ ctx).
func TestPRFAgainstCryptoTLS(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"x"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	for _, tc := range []struct {
		id uint16
		h  crypto.Hash
	}{
		{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, crypto.SHA256},
		{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, crypto.SHA384},
	} {
		c1, c2 := net.Pipe()
		var keylog bytes.Buffer
		srv := tls.Server(c1, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tc.id}})
		rec := &recordingConn{Conn: c2}
		cli := tls.Client(rec, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, KeyLogWriter: &keylog, CipherSuites: []uint16{tc.id}})
		errc := make(chan error, 1)
		go func() { errc <- srv.Handshake() }()
		if err := cli.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		fs := strings.Fields(keylog.String())
		if len(fs) != 3 || fs[0] != "CLIENT_RANDOM" {
			t.Fatalf("key log %q", keylog.String())
		}
		cr, _ := hex.DecodeString(fs[1])
		master, _ := hex.DecodeString(fs[2])
		st := cli.ConnectionState()
		ctx := []byte("context value")
		ekm, err := st.ExportKeyingMaterial("EXPERIMENTAL milagro", ctx, 77)
		if err != nil {
			t.Fatal(err)
		}
		// crypto/tls does not export the server random: take it from the
		// ServerHello the client read (which also exercises our parser on
		// a crypto/tls ServerHello).
		msgs := recordsToMessages(t, rec.buf.Bytes())
		if len(msgs) == 0 || msgs[0][0] != typeServerHello {
			t.Fatal("no ServerHello captured")
		}
		sh, err := parseServerHello(msgs[0][4:])
		if err != nil {
			t.Fatalf("parsing crypto/tls ServerHello: %v", err)
		}
		if !sh.ems || !sh.secureRenegExt {
			t.Fatalf("crypto/tls ServerHello: ems %v reneg %v", sh.ems, sh.secureRenegExt)
		}
		seed := append(append(append([]byte(nil), cr...), sh.random...), 0, byte(len(ctx)))
		seed = append(seed, ctx...)
		if got := PRF(tc.h, master, "EXPERIMENTAL milagro", seed, 77); !bytes.Equal(got, ekm) {
			t.Fatalf("%v: PRF disagrees with crypto/tls ExportKeyingMaterial", tc.h)
		}
		c1.Close()
		c2.Close()
	}
}

type recordingConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.buf.Write(p[:n])
	return n, err
}

// recordsToMessages splits plaintext TLS records of type handshake into
// whole handshake messages (stopping at the first other record).
func recordsToMessages(t testing.TB, data []byte) [][]byte {
	t.Helper()
	var hs []byte
	for len(data) >= 5 && data[0] == recHandshake {
		n := int(data[3])<<8 | int(data[4])
		if len(data) < 5+n {
			t.Fatalf("truncated record")
		}
		hs = append(hs, data[5:5+n]...)
		data = data[5+n:]
	}
	var msgs [][]byte
	for len(hs) >= 4 {
		n := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		if len(hs) < 4+n {
			t.Fatalf("truncated handshake message")
		}
		msgs = append(msgs, hs[:4+n])
		hs = hs[4+n:]
	}
	return msgs
}
