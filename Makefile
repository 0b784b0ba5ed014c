# milagro — certificate-less TLS 1.2 with identity-based key agreement.
GO      ?= go
BIN     := bin/mtls
FUZZTIME ?= 3s

.PHONY: all build test unit lint fuzz demo bench bench-proxy interop clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/mtls

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# The README's test command: lint, all tests (interop included) with -race, every fuzz target briefly.
test: lint build unit fuzz

interop: build
	$(GO) test -race -count=1 -v ./interop/...

demo: build
	$(GO) run ./cmd/mtls demo

# Benchmarks: pairing steps and per-handshake totals, AEAD records, handshakes
# over an in-memory pipe, mtls.Conn throughput next to crypto/tls, full
# handshakes over loopback with server CPU per handshake, gRPC unary calls over
# mtls next to grpc-go on crypto/tls.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./pairing ./ciphersuite ./handshake ./mtls ./dtls ./grpccreds ./bench

# The proxy pair next to an stunnel4 PSK pair on the same cores.
bench-proxy: build
	$(GO) test -run='^$$' -bench=Proxy -benchmem ./proxy

clean:
	rm -rf bin
