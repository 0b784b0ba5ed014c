package mtls_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// A Milagro CS server: clients authenticate with the key a trust authority
// issued for their identity; the server holds only the server secret.
// (Keys normally come from the mtls CLI or a D-TA service and are loaded
// with mtls.LoadCSServerSecret / LoadCSClientKey; here one trust authority
// issues them in memory.)
func ExampleListen() {
	ta, _ := pairing.NewMasterShare(rand.Reader)
	serverKey, _ := pairing.CombineCSServerSecrets(ta.IssueCSServerSecret())
	clientKeyShare, _ := ta.IssueCSClientKey("alice@example.com")
	clientKey, _ := pairing.CombineCSClientKeys(clientKeyShare) // one share from each D-TA
	// Today's time permit: servers require one unless PermitMode says otherwise.
	permitShare, _ := ta.IssueTimePermit("alice@example.com", pairing.Day(time.Now()))
	permit, _ := pairing.CombineTimePermits(permitShare)

	ln, err := mtls.Listen("tcp", "127.0.0.1:0", &mtls.Config{
		CSServerKeys: []*pairing.CSServerSecret{serverKey},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		conn := c.(*mtls.Conn)
		if err := conn.Handshake(); err != nil {
			return
		}
		fmt.Fprintf(conn, "hello %s\n", conn.ConnectionState().PeerIdentity)
	}()

	conn, err := mtls.Dial("tcp", ln.Addr().String(), &mtls.Config{
		CSKey:     clientKey,
		CSPermits: []*pairing.TimePermit{permit},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	msg, _ := io.ReadAll(conn)
	fmt.Print(string(msg))
	// Output: hello alice@example.com
}

// A Milagro CS client with a PIN-protected key (two factors: the stored
// token alone cannot authenticate) and today's time permit (daily
// revocation: servers require a permit by default).
func ExampleDial() {
	ta, _ := pairing.NewMasterShare(rand.Reader)
	serverKey, _ := pairing.CombineCSServerSecrets(ta.IssueCSServerSecret())
	keyShare, _ := ta.IssueCSClientKey("alice@example.com")
	key, _ := pairing.CombineCSClientKeys(keyShare) // one share from each D-TA
	token, _ := key.ExtractPIN(4711)                // what is stored on the client
	permitShare, _ := ta.IssueTimePermit("alice@example.com", pairing.Day(time.Now()))
	permit, _ := pairing.CombineTimePermits(permitShare)

	ln, err := mtls.Listen("tcp", "127.0.0.1:0", &mtls.Config{
		CSServerKeys: []*pairing.CSServerSecret{serverKey},
		PermitMode:   pairing.PermitsRequired,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go echoIdentity(ln)

	conn, err := mtls.Dial("tcp", ln.Addr().String(), &mtls.Config{
		CSToken:   token,
		GetPIN:    func() (uint32, error) { return 4711, nil }, // ask the user
		CSPermits: []*pairing.TimePermit{permit},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	fmt.Println(st.CipherSuiteName)
	msg, _ := io.ReadAll(conn)
	fmt.Print(string(msg))
	// Output:
	// TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256
	// server saw alice@example.com
}

// Milagro P2P: both peers hold a key for their own identity and either can
// be the TLS server; the dialler names the peer it expects, and the
// listener can restrict who may connect.
func Example_p2p() {
	ta, _ := pairing.NewMasterShare(rand.Reader)
	nodeAShare, _ := ta.IssueP2PKey("node-a")
	nodeA, _ := pairing.CombineP2PKeys(nodeAShare)
	nodeBShare, _ := ta.IssueP2PKey("node-b")
	nodeB, _ := pairing.CombineP2PKeys(nodeBShare)

	ln, err := mtls.Listen("tcp", "127.0.0.1:0", &mtls.Config{
		P2PKey: nodeA,
		VerifyPeerIdentity: func(id string) error {
			if !strings.HasPrefix(id, "node-") {
				return fmt.Errorf("%s is not a node", id)
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go echoIdentity(ln)

	conn, err := mtls.Dial("tcp", ln.Addr().String(), &mtls.Config{
		P2PKey:         nodeB,
		ServerIdentity: "node-a",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Println("connected to", conn.ConnectionState().PeerIdentity)
	msg, _ := io.ReadAll(conn)
	fmt.Print(string(msg))
	// Output:
	// connected to node-a
	// server saw node-b
}

// Pre-shared keys (RFC 4279 / 5489 suites, interoperable with OpenSSL,
// GnuTLS and stunnel): the server looks the key up by the client's identity.
func Example_psk() {
	keys := map[string][]byte{"sensor-17": []byte("0123456789abcdef0123456789abcdef")}
	ln, err := mtls.Listen("tcp", "127.0.0.1:0", &mtls.Config{
		GetServerPSK: func(id string) ([]byte, error) {
			if k, ok := keys[id]; ok {
				return k, nil
			}
			return nil, fmt.Errorf("unknown identity %q", id)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go echoIdentity(ln)

	conn, err := mtls.Dial("tcp", ln.Addr().String(), &mtls.Config{
		PSKIdentity: "sensor-17",
		PSK:         keys["sensor-17"],
	})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	msg, _ := io.ReadAll(conn)
	fmt.Print(string(msg))
	// Output: server saw sensor-17
}

// ConnContext alone makes the identity available to handlers of a plain
// net/http server on an mtls listener (HTTP/1.1 only; package mtlshttp
// adds h2).
func ExampleConnContext() {
	srv := &http.Server{
		ConnContext: mtls.ConnContext,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if id, ok := mtls.PeerIdentity(r.Context()); ok {
				fmt.Fprintln(w, "hello", id)
			}
		}),
	}
	_ = srv // srv.Serve(mtlsListener)
}

// echoIdentity answers one connection with the identity it authenticated.
func echoIdentity(ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	conn := c.(*mtls.Conn)
	if err := conn.Handshake(); err != nil {
		return
	}
	fmt.Fprintf(conn, "server saw %s\n", conn.ConnectionState().PeerIdentity)
}
