package grpccreds_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"net"

	"github.com/milagro-go/milagro/grpccreds"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// A gRPC server whose clients authenticate with Milagro CS keys; an
// interceptor admits only known identities before any handler runs.
// (Keys normally come from the mtls CLI or a D-TA service; here one trust
// authority issues them in memory.)
func ExampleNew() {
	ta, _ := pairing.NewMasterShare(rand.Reader)
	serverKey, _ := pairing.CombineCSServerSecrets(ta.IssueCSServerSecret())
	aliceKeyShare, _ := ta.IssueCSClientKey("alice@example.com")
	aliceKey, _ := pairing.CombineCSClientKeys(aliceKeyShare) // one share from each D-TA
	malloryKeyShare, _ := ta.IssueCSClientKey("mallory@example.com")
	malloryKey, _ := pairing.CombineCSClientKeys(malloryKeyShare) // one share from each D-TA

	allowed := map[string]bool{"alice@example.com": true}
	srv := grpc.NewServer(
		grpc.Creds(grpccreds.New(&mtls.Config{CSServerKeys: []*pairing.CSServerSecret{serverKey}, PermitMode: pairing.PermitsOptional})),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			id, _ := grpccreds.PeerIdentity(ctx)
			if !allowed[id] {
				return nil, status.Errorf(codes.PermissionDenied, "%s may not call %s", id, info.FullMethod)
			}
			return h(ctx, req)
		}),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Stop()

	for _, key := range []*pairing.CSClientKey{aliceKey, malloryKey} {
		conn, err := grpc.NewClient(l.Addr().String(),
			grpc.WithTransportCredentials(grpccreds.New(&mtls.Config{CSKey: key})))
		if err != nil {
			log.Fatal(err)
		}
		resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil {
			fmt.Println(status.Code(err), status.Convert(err).Message())
		} else {
			fmt.Println(key.ID(), resp.GetStatus())
		}
		conn.Close()
	}
	// Output:
	// alice@example.com SERVING
	// PermissionDenied mallory@example.com may not call /grpc.health.v1.Health/Check
}

// The server's handlers and interceptors, and the client (with grpc.Peer),
// find the connection's details in the gRPC peer's AuthInfo.
func ExampleFromContext() {
	handler := func(ctx context.Context) {
		if ai, ok := grpccreds.FromContext(ctx); ok {
			fmt.Println(ai.PeerIdentity(), ai.State.CipherSuiteName, ai.State.NegotiatedProtocol)
		}
	}
	_ = handler
}
