// Package bench holds side-by-side benchmarks of the module's handshakes
// (`make bench`). It has no API: everything is in its _test.go files.
//
//	go test -run='^$' -bench=Handshake -benchtime=200x ./bench
//
// BenchmarkHandshake runs full handshakes over loopback TCP, client and
// server in one process, for Milagro CS (with and without a time permit),
// Milagro P2P, PSK and ECDHE_PSK. Besides ns/op (wall time per sequential
// handshake) it reports:
//
//	handshakes/s   sequential full handshakes per second (wall clock)
//	server-ms/op   CPU time of the server's handshake goroutine per handshake
//	client-ms/op   CPU time of the client's handshake goroutine per handshake
//	process-ms/op  CPU time of the whole process per handshake (both sides,
//	               plus the runtime: GC, network poller), sequential only
//	wire-bytes/op  bytes on the wire per handshake, both directions (TLS
//	               records, headers included), sequential only
//
// The Milagro cases run with the default post-quantum policy (hybrid);
// MilagroCSClassic and MilagroP2PClassic turn it off. BenchmarkHandshakePQ
// measures the cost of the ML-KEM-768 hybrid directly: it alternates a
// hybrid and a classic handshake per iteration and reports each side's CPU
// for both and the difference (pq-server-ms/op, pq-client-ms/op), with the
// bytes on the wire of each; BenchmarkPQHybridCost times the ML-KEM
// operations alone.
//
//	go test -run='^$' -bench='HandshakePQ|PQHybridCost' -benchtime=300x ./bench
//
// The per-side CPU figures come from clock_gettime(CLOCK_THREAD_CPUTIME_ID)
// around Handshake on a goroutine locked to its OS thread, so they count
// only that side's work (not the peer's, not time spent waiting for the
// network) and do not grow when other processes share the cores; they leave
// out garbage collection done on other threads (compare process-ms/op).
// getrusage(RUSAGE_THREAD) would under-count: it omits the time a thread
// has run since it was last scheduled in, which is most of the server's
// final key agreement. The CPU metrics are Linux-only.
//
// gRPC unary calls per second over mtls, next to grpc-go on crypto/tls, are
// BenchmarkGRPCUnary in package grpccreds (also part of `make bench`).
package bench
