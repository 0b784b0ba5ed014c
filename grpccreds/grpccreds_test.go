package grpccreds_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/grpccreds"
	"github.com/milagro-go/milagro/mtls"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Unary and bidirectional streaming calls over CS, P2P and PSK; the
// identity is checked in interceptors and seen by the handler; the client
// sees the server's AuthInfo.
func TestUnaryAndStreaming(t *testing.T) {
	for _, kind := range []string{"CS", "P2P", "PSK"} {
		t.Run(kind, func(t *testing.T) {
			ccfg, scfg, id := suiteConfigs(t, kind)
			ui, si := allow(id)
			svc := &service{}
			addr := startServer(t, scfg, svc, grpc.UnaryInterceptor(ui), grpc.StreamInterceptor(si))
			client := dialClient(t, addr, ccfg)
			ctx := ctxT(t)

			var p peer.Peer
			resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("ping")}}, grpc.Peer(&p))
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetUsername() != id || string(resp.GetPayload().GetBody()) != "ping" {
				t.Fatalf("handler saw identity %q, payload %q", resp.GetUsername(), resp.GetPayload().GetBody())
			}
			ai, ok := p.AuthInfo.(grpccreds.AuthInfo)
			if !ok {
				t.Fatalf("client AuthInfo is %T", p.AuthInfo)
			}
			if ai.AuthType() != "mtls" || ai.State.NegotiatedProtocol != "h2" || ai.State.KeyExchange != kinds[kind] {
				t.Fatalf("client AuthInfo: %s %+v", ai.AuthType(), ai.State)
			}
			if kind == "P2P" && ai.PeerIdentity() != nodeA {
				t.Fatalf("P2P client sees server %q, want %q", ai.PeerIdentity(), nodeA)
			}

			stream, err := client.FullDuplexCall(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				msg := []byte(fmt.Sprintf("m%d", i))
				if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: msg}}); err != nil {
					t.Fatal(err)
				}
				r, err := stream.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if want := append([]byte(id+":"), msg...); !bytes.Equal(r.GetPayload().GetBody(), want) {
					t.Fatalf("stream reply %q, want %q", r.GetPayload().GetBody(), want)
				}
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("stream end: %v", err)
			}
			if n := svc.reached.Load(); n != 2 {
				t.Fatalf("handlers ran %d times, want 2", n)
			}
		})
	}
}

// A denied identity never reaches the handler: refused by the interceptor
// (bob is authenticated but not allowed), or by the handshake
// (VerifyPeerIdentity: access_denied, the RPC fails Unavailable).
func TestDeniedIdentity(t *testing.T) {
	k := testKeys(t)
	t.Run("interceptor", func(t *testing.T) {
		_, scfg, _ := suiteConfigs(t, "CS")
		ui, si := allow(alice)
		svc := &service{}
		addr := startServer(t, scfg, svc, grpc.UnaryInterceptor(ui), grpc.StreamInterceptor(si))
		client := dialClient(t, addr, &mtls.Config{CSKey: k.bob})
		ctx := ctxT(t)
		_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("unary: want PermissionDenied, got %v", err)
		}
		stream, err := client.FullDuplexCall(ctx)
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("stream: want PermissionDenied, got %v", err)
		}
		if n := svc.reached.Load(); n != 0 {
			t.Fatalf("a denied identity reached the handler %d times", n)
		}
	})
	t.Run("handshake", func(t *testing.T) {
		_, scfg, _ := suiteConfigs(t, "P2P")
		scfg.VerifyPeerIdentity = func(id string) error { return fmt.Errorf("%s is not on the list", id) }
		svc := &service{}
		addr := startServer(t, scfg, svc)
		ccfg, _, _ := suiteConfigs(t, "P2P")
		client := dialClient(t, addr, ccfg)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("want Unavailable, got %v", err)
		}
		if n := svc.reached.Load(); n != 0 {
			t.Fatalf("a denied identity reached the handler %d times", n)
		}
	})
}

// Credentials contract: Info, Clone, OverrideServerName; a client that
// does not negotiate h2 is refused.
func TestCredentials(t *testing.T) {
	ccfg, scfg, _ := suiteConfigs(t, "PSK")
	c := grpccreds.New(ccfg)
	if info := c.Info(); info.SecurityProtocol != "mtls" || info.SecurityVersion != "1.2" {
		t.Fatalf("Info = %+v", info)
	}
	c2 := c.Clone()
	if err := c2.OverrideServerName("other.example"); err != nil {
		t.Fatal(err)
	}
	if c.Info().ServerName != "" || c2.Info().ServerName != "other.example" {
		t.Fatalf("Clone shares its config: %q %q", c.Info().ServerName, c2.Info().ServerName)
	}
	if ccfg.NextProtos != nil {
		t.Fatal("New modified the caller's Config")
	}

	// A raw mtls client without ALPN: the server handshake completes at
	// the TLS level but grpccreds refuses the connection.
	svc := &service{}
	addr := startServer(t, scfg, svc)
	conn, err := mtls.Dial("tcp", addr, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("server kept a connection without h2")
	}
	if kx := conn.ConnectionState().KeyExchange; kx != ciphersuite.KXECDHEPSK {
		t.Fatalf("key exchange %v", kx)
	}
}
