// Package mtlshttp runs HTTP/1.1 and HTTP/2 over mtls connections, as
// net/http sits beside crypto/tls: a program that only needs mtls links
// neither net/http's server nor golang.org/x/net/http2.
//
// On a server, Serve serves an *http.Server on an mtls listener, speaking
// HTTP/2 or HTTP/1.1 as each client chose by ALPN (mtls.Config.NextProtos).
// Handlers see the same things over both protocols: the authenticated
// client with mtls.PeerIdentity(r.Context()), the connection with
// RequestConnectionState(r), and r.TLS filled in (Version, CipherSuite,
// ServerName, NegotiatedProtocol, TLSUnique; never PeerCertificates: there
// are no certificates).
//
// On a client, NewTransport (HTTP/1.1) and NewHTTP2Transport make
// http.RoundTrippers whose connections are mtls ones;
// ResponseConnectionState and ConnectionStateOf say which server answered
// and how (the identity it proved, the suite).
//
// Runnable examples: ExampleServe (HTTP/2 and HTTP/1.1 on one listener),
// ExampleResponseConnectionState and ExampleConnectionStateOf.
package mtlshttp
