package interop

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestStunnelPSKsecretsFile: stunnel (client mode) and `mtls server` read
// one and the same stunnel PSKsecrets file whose key is ASCII, not hex: the
// handshake only succeeds if both take the key as the same bytes.
func TestStunnelPSKsecretsFile(t *testing.T) {
	bin := requirePeer(t, "stunnel4", "stunnel4")
	mtlsBin := buildCLI(t)
	dir := t.TempDir()
	secrets := filepath.Join(dir, "psk.txt")
	if err := os.WriteFile(secrets, []byte("other:Zee7aich5eeph0ieb4Ahth\nclient1:oaP4Eish-aeSaishei6rio6x:eeph3az\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startPeer(t, nil, mtlsBin, "server", "--listen", "127.0.0.1:0", "--once", "--psk-file", secrets) // format detected
	if !srv.waitOutput("msg=listening", 10*time.Second) {
		t.Fatalf("mtls server did not start:\n%s", srv.output())
	}
	m := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(srv.stderr.String())
	if m == nil {
		t.Fatalf("no listening address in:\n%s", srv.stderr.String())
	}
	port := freePort(t)
	conf := filepath.Join(dir, "stunnel.conf")
	body := fmt.Sprintf("foreground = yes\npid =\ndebug = 5\nsyslog = no\n[cli]\nclient = yes\naccept = 127.0.0.1:%d\nconnect = %s\n"+
		"ciphers = PSK-AES128-GCM-SHA256\nsslVersion = TLSv1.2\nPSKsecrets = %s\nPSKidentity = client1\n", port, m[1], secrets)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	st := startPeer(t, nil, bin, conf)
	waitListening(t, st, port)
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	msg := "an ASCII PSK from stunnel's own file format\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo through stunnel and mtls server: %q, %v\nmtls server:\n%s\nstunnel:\n%s", got, err, srv.output(), st.output())
	}
}
