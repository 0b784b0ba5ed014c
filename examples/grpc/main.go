// Command grpc is a gRPC server and client over mtls: no certificates, the
// client authenticates with a Milagro CS key (or a P2P key), and a server
// interceptor admits only the identities given with -allow before any
// handler runs.
//
//	go run ./examples/grpc -listen 127.0.0.1:9443 -key server.key -p2p-key node-a.key -allow alice@example.com,node-b &
//	go run ./examples/grpc -connect 127.0.0.1:9443 -key alice.key -permit alice.permit -msg hi
//	# server says: hello alice@example.com, you said "hi" (TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256)
//	# stream: alice@example.com: one
//	# ...
//
// The service is described by hand (grpc.ServiceDesc with the protobuf
// well-known StringValue message), so the example needs no generated code.
// The key files are made with the mtls CLI; see examples/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/milagro-go/milagro/grpccreds"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "grpc:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("grpc", flag.ContinueOnError)
	listen := fs.String("listen", "", "serve on this address")
	connect := fs.String("connect", "", "call the server at this address")
	keyFile := fs.String("key", "", "Milagro CS key: the server secret (server) or a client key (client)")
	permitFile := fs.String("permit", "", "client: today's time permit (optional)")
	p2pFile := fs.String("p2p-key", "", "Milagro P2P key file")
	serverID := fs.String("server-id", "", "client with -p2p-key: the server's P2P identity")
	permits := fs.String("permits", "required", "server: time permit policy, required or optional (clients without a permit)")
	fs.Bool("require-permits", true, "server: CS clients must present today's time permit (the default)")
	allow := fs.String("allow", "", "server: comma-separated identities admitted by the interceptor")
	msg := fs.String("msg", "hello", "client: the message to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mode, err := pairing.ParsePermitMode(*permits)
	if err != nil {
		return err
	}
	cfg := &mtls.Config{HandshakeTimeout: 10 * time.Second, PermitMode: mode}
	switch {
	case *listen != "" && *keyFile != "":
		k, err := mtls.LoadCSServerSecret(*keyFile)
		if err != nil {
			return err
		}
		cfg.CSServerKeys = []*pairing.CSServerSecret{k}
	case *keyFile != "":
		k, err := mtls.LoadCSClientKey(*keyFile)
		if err != nil {
			return err
		}
		cfg.CSKey = k
	}
	if *permitFile != "" {
		p, err := mtls.LoadTimePermit(*permitFile)
		if err != nil {
			return err
		}
		cfg.CSPermits = []*pairing.TimePermit{p}
	}
	if *p2pFile != "" {
		k, err := mtls.LoadP2PKey(*p2pFile)
		if err != nil {
			return err
		}
		cfg.P2PKey = k
		cfg.ServerIdentity = *serverID
	}
	switch {
	case *listen != "":
		return serve(ctx, *listen, cfg, strings.Split(*allow, ","), stdout)
	case *connect != "":
		return call(ctx, *connect, cfg, *msg, stdout)
	}
	return errors.New("give -listen or -connect")
}

// The service: Hello (unary) and Chat (bidirectional stream).
var greeter = grpc.ServiceDesc{
	ServiceName: "milagro.example.Greeter",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Hello", Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
		req := new(wrapperspb.StringValue)
		if err := dec(req); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, req any) (any, error) {
			ai, _ := grpccreds.FromContext(ctx)
			return wrapperspb.String(fmt.Sprintf("hello %s, you said %q (%s)",
				ai.PeerIdentity(), req.(*wrapperspb.StringValue).GetValue(), ai.State.CipherSuiteName)), nil
		}
		if in == nil {
			return h(ctx, req)
		}
		return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/milagro.example.Greeter/Hello"}, h)
	}}},
	Streams: []grpc.StreamDesc{{StreamName: "Chat", ServerStreams: true, ClientStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			id, _ := grpccreds.PeerIdentity(stream.Context())
			for {
				m := new(wrapperspb.StringValue)
				if err := stream.RecvMsg(m); errors.Is(err, io.EOF) {
					return nil
				} else if err != nil {
					return err
				}
				if err := stream.SendMsg(wrapperspb.String(id + ": " + m.GetValue())); err != nil {
					return err
				}
			}
		}}},
}

// admit checks the authenticated identity before any handler runs.
func admit(allowed []string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		id, ok := grpccreds.PeerIdentity(ctx)
		if !ok {
			return status.Error(codes.Unauthenticated, "no authenticated identity")
		}
		for _, a := range allowed {
			if a == id {
				return nil
			}
		}
		return status.Errorf(codes.PermissionDenied, "%s is not allowed", id)
	}
}

func serve(ctx context.Context, addr string, cfg *mtls.Config, allowed []string, stdout io.Writer) error {
	check := admit(allowed)
	srv := grpc.NewServer(
		grpc.Creds(grpccreds.New(cfg)),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(s any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context()); err != nil {
				return err
			}
			return h(s, ss)
		}),
	)
	srv.RegisterService(&greeter, nil)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on %s\n", l.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		srv.GracefulStop()
		return nil
	}
}

func call(ctx context.Context, addr string, cfg *mtls.Config, msg string, stdout io.Writer) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(grpccreds.New(cfg)))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	reply := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, "/milagro.example.Greeter/Hello", wrapperspb.String(msg), reply); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "server says: %s\n", reply.GetValue())

	stream, err := conn.NewStream(ctx, &greeter.Streams[0], "/milagro.example.Greeter/Chat")
	if err != nil {
		return err
	}
	for _, word := range []string{"one", "two"} {
		if err := stream.SendMsg(wrapperspb.String(word)); err != nil {
			return err
		}
		m := new(wrapperspb.StringValue)
		if err := stream.RecvMsg(m); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "stream: %s\n", m.GetValue())
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	if err := stream.RecvMsg(new(wrapperspb.StringValue)); !errors.Is(err, io.EOF) {
		return fmt.Errorf("stream end: %v", err)
	}
	return nil
}
