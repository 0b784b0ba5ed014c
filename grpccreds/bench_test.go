package grpccreds_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/grpccreds"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// BenchmarkGRPCUnary measures gRPC unary calls per second over one
// established connection (handshake excluded): mtls with each key exchange
// (AES-128-GCM suites) next to grpc-go's own TLS credentials on crypto/tls,
// TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 with a P-256 certificate. Client
// and server share the process: calls/s is wall clock, cpu-us/call the
// process's CPU time (both sides, GC included) per call, which other
// load on the machine does not inflate.
//
//	go test -run='^$' -bench=GRPCUnary ./grpccreds
func BenchmarkGRPCUnary(b *testing.B) {
	for _, kind := range []string{"CS", "P2P", "PSK"} {
		b.Run("mtls-"+kind, func(b *testing.B) {
			ccfg, scfg, _ := suiteConfigs(b, kind)
			id := aes128Suite(b, kinds[kind])
			ccfg.CipherSuites, scfg.CipherSuites = []uint16{id}, []uint16{id}
			benchUnary(b, grpc.Creds(grpccreds.New(scfg)), grpc.WithTransportCredentials(grpccreds.New(ccfg)))
		})
	}
	b.Run("crypto-tls-ECDHE-ECDSA", func(b *testing.B) {
		srv, cli := tlsCreds(b)
		benchUnary(b, grpc.Creds(srv), grpc.WithTransportCredentials(cli))
	})
}

func aes128Suite(b *testing.B, kx ciphersuite.KXKind) uint16 {
	for _, s := range ciphersuite.ByKX(kx) {
		if strings.Contains(s.Name, "AES_128_GCM") {
			return s.ID
		}
	}
	b.Fatalf("no AES-128-GCM suite for %v", kx)
	return 0
}

func benchUnary(b *testing.B, sopt grpc.ServerOption, copt grpc.DialOption) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(sopt)
	testgrpc.RegisterTestServiceServer(srv, &service{})
	go srv.Serve(l)
	defer srv.Stop()
	conn, err := grpc.NewClient(l.Addr().String(), copt)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: make([]byte, 64)}}
	if _, err := client.UnaryCall(ctx, req); err != nil { // connect and handshake
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		cpu0, _ := processCPU()
		for i := 0; i < b.N; i++ {
			if _, err := client.UnaryCall(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
		reportCalls(b, cpu0)
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		cpu0, _ := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := client.UnaryCall(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportCalls(b, cpu0)
	})
}

func reportCalls(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	if cpu1, ok := processCPU(); ok {
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-us/call")
	}
}

// tlsCreds returns grpc-go TLS credentials: a self-signed P-256 certificate
// for 127.0.0.1, TLS 1.2 only, ECDHE-ECDSA-AES128-GCM-SHA256.
func tlsCreds(b *testing.B) (server, client credentials.TransportCredentials) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	suites := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	server = credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites,
	})
	client = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites})
	return server, client
}
