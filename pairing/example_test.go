package pairing_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/milagro-go/milagro/pairing"
)

// Three D-TAs issue shares; the client combines its key and permit, takes a
// PIN out, and runs Milagro CS with the server api.example.com, which holds
// the combined server key for that identity.
func Example_cs() {
	var keys []*pairing.CSClientKey
	var permits []*pairing.TimePermit
	var secrets []*pairing.CSServerSecret
	now := time.Unix(1763769600+3600, 0)
	day := pairing.Day(now)
	for i := 0; i < 3; i++ {
		dta, _ := pairing.NewMasterShare(rand.Reader)
		k, _ := dta.IssueCSClientKey("alice@example.com")
		p, _ := dta.IssueTimePermit("alice@example.com", day)
		s, _ := dta.IssueCSServerKey("api.example.com")
		keys, permits, secrets = append(keys, k), append(permits, p), append(secrets, s)
	}
	key, _ := pairing.CombineCSClientKeys(keys...)
	permit, _ := pairing.CombineTimePermits(permits...)
	ks, _ := pairing.CombineCSServerSecrets(secrets...)
	token, _ := key.ExtractPIN(1234)
	key.Zeroize()

	// Client: ClientHello extension values.
	client, _ := pairing.NewCSClientWithPIN(token, 1234, permit)
	hello, chs, _ := client.Hello(rand.Reader, uint64(now.Unix()), "api.example.com")

	// Server: policy, proof, ServerKeyExchange.
	server, _ := pairing.NewCSServer(ks)
	if err := pairing.CheckHello(hello, now, pairing.DefaultClockSkew, pairing.PermitsRequired); err != nil {
		panic(err)
	}
	shs, err := server.Accept(rand.Reader, hello)
	if err != nil {
		panic(err) // errors.Is(err, pairing.ErrAuthFailed) → access_denied
	}
	// Client: ClientKeyExchange and pre-master secret.
	r, clientPMS, _ := chs.Finish(rand.Reader, shs.W())
	// Server: pre-master secret.
	serverPMS, _ := shs.Finish(r)
	fmt.Println(shs.ID(), len(clientPMS), bytes.Equal(clientPMS, serverPMS))
	// Output: alice@example.com 32 true
}

// Peers node-a (TLS server) and node-b (TLS client) run Milagro P2P.
func Example_p2p() {
	var a, b []*pairing.P2PKey
	for i := 0; i < 3; i++ {
		dta, _ := pairing.NewMasterShare(rand.Reader)
		ka, _ := dta.IssueP2PKey("node-a")
		kb, _ := dta.IssueP2PKey("node-b")
		a, b = append(a, ka), append(b, kb)
	}
	keyA, _ := pairing.CombineP2PKeys(a...)
	keyB, _ := pairing.CombineP2PKeys(b...)
	server, _ := pairing.NewP2PServer(keyA)
	client, _ := pairing.NewP2PClient(keyB)

	shs, _ := server.Start(rand.Reader)                                                // ServerKeyExchange: shs.ID(), shs.X()
	wC, yC, clientPMS, err := client.Respond(rand.Reader, "node-a", shs.ID(), shs.X()) // ClientKeyExchange: client.ID(), wC, yC
	if err != nil {
		panic(err) // errors.Is(err, pairing.ErrPeerIdentity) → access_denied
	}
	serverPMS, _ := shs.Finish(client.ID(), wC, yC)
	fmt.Println(bytes.Equal(clientPMS, serverPMS))
	// Output: true
}
