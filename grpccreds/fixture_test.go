package grpccreds_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/grpccreds"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
	nodeA = "spiffe://example.org/node-a"
	nodeB = "spiffe://example.org/node-b"
	pskID = "client1"
)

var testPSK = []byte("0123456789abcdef0123456789abcdef")

// keys are Milagro credentials from one trust authority (in production
// every key is the sum of several D-TAs' shares; one is enough here).
type keys struct {
	alice, bob   *pairing.CSClientKey
	secret       *pairing.CSServerSecret
	nodeA, nodeB *pairing.P2PKey
}

var (
	keysOnce sync.Once
	theKeys  *keys
	keysErr  error
)

func testKeys(t testing.TB) *keys {
	t.Helper()
	keysOnce.Do(func() { theKeys, keysErr = newKeys() })
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return theKeys
}

func newKeys() (*keys, error) {
	ta, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		return nil, err
	}
	k := &keys{}
	if k.secret, err = pairing.CombineCSServerSecrets(ta.IssueCSServerSecret()); err != nil {
		return nil, err
	}
	cs := func(id string) (*pairing.CSClientKey, error) {
		s, err := ta.IssueCSClientKey(id)
		if err != nil {
			return nil, err
		}
		return pairing.CombineCSClientKeys(s)
	}
	p2p := func(id string) (*pairing.P2PKey, error) {
		s, err := ta.IssueP2PKey(id)
		if err != nil {
			return nil, err
		}
		return pairing.CombineP2PKeys(s)
	}
	if k.alice, err = cs(alice); err != nil {
		return nil, err
	}
	if k.bob, err = cs(bob); err != nil {
		return nil, err
	}
	if k.nodeA, err = p2p(nodeA); err != nil {
		return nil, err
	}
	if k.nodeB, err = p2p(nodeB); err != nil {
		return nil, err
	}
	return k, nil
}

// suiteConfigs returns client and server configurations for one kind of
// key exchange; the client identity is the one the server sees.
func suiteConfigs(t testing.TB, kind string) (client, server *mtls.Config, id string) {
	k := testKeys(t)
	switch kind {
	case "CS":
		return &mtls.Config{CSKey: k.alice}, &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{k.secret}, PermitMode: pairing.PermitsOptional}, alice
	case "P2P":
		return &mtls.Config{P2PKey: k.nodeB, ServerIdentity: nodeA}, &mtls.Config{P2PKey: k.nodeA}, nodeB
	case "PSK":
		return &mtls.Config{PSKIdentity: pskID, PSK: testPSK},
			&mtls.Config{GetServerPSK: func(id string) ([]byte, error) {
				if id != pskID {
					return nil, fmt.Errorf("unknown identity %q", id)
				}
				return testPSK, nil
			}}, pskID
	}
	t.Fatalf("unknown kind %q", kind)
	return nil, nil, ""
}

var kinds = map[string]ciphersuite.KXKind{"CS": ciphersuite.KXMilagroCS, "P2P": ciphersuite.KXMilagroP2P, "PSK": ciphersuite.KXECDHEPSK}

// service answers with the caller's identity (Username) as its handler sees it.
type service struct {
	testgrpc.UnimplementedTestServiceServer
	reached atomic.Int32 // handler invocations
}

func (s *service) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	s.reached.Add(1)
	id, _ := grpccreds.PeerIdentity(ctx)
	return &testgrpc.SimpleResponse{Username: id, Payload: req.GetPayload()}, nil
}

func (s *service) FullDuplexCall(stream testgrpc.TestService_FullDuplexCallServer) error {
	s.reached.Add(1)
	id, _ := grpccreds.PeerIdentity(stream.Context())
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		body := append([]byte(id+":"), req.GetPayload().GetBody()...)
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: body}}); err != nil {
			return err
		}
	}
}

// allow returns interceptors that admit only the listed identities.
func allow(ids ...string) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	check := func(ctx context.Context) error {
		id, ok := grpccreds.PeerIdentity(ctx)
		if !ok {
			return status.Error(codes.Unauthenticated, "no mtls peer identity")
		}
		for _, a := range ids {
			if id == a {
				return nil
			}
		}
		return status.Errorf(codes.PermissionDenied, "identity %q is not allowed", id)
	}
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}, func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}
}

// startServer serves svc over mtls on loopback and returns its address.
func startServer(t testing.TB, cfg *mtls.Config, svc testgrpc.TestServiceServer, opts ...grpc.ServerOption) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(opts, grpc.Creds(grpccreds.New(cfg)))...)
	testgrpc.RegisterTestServiceServer(srv, svc)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

func dialClient(t testing.TB, addr string, cfg *mtls.Config) testgrpc.TestServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(grpccreds.New(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return testgrpc.NewTestServiceClient(conn)
}
