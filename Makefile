# milagro — certificate-less TLS 1.2 with identity-based key agreement.
GO      ?= go
BIN     := bin/mtls
FUZZTIME ?= 3s

.PHONY: all build test unit lint fuzz demo demo-ha bench bench-proxy interop peers deploy-check image image-check clean

all: build

# Version and VCS revision for `mtls --version`, for builds where the go
# command records no VCS information (GOFLAGS=-buildvcs=false, a tarball).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -X main.version=$(VERSION) -X main.revision=$(REVISION)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mtls

# Interop peers (openssl, gnutls-bin, stunnel4, a C compiler): installed when
# root with apt-get, else a failure naming the packages. Never skipped.
peers:
	./scripts/install-peers.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The pairing engine follows cgo: blst with cgo on, pure-Go circl with
# CGO_ENABLED=0. blst is built portable (ADX detected at run time, no SIGILL
# on older x86-64 CPUs); the flag must reach blst's own cgo package, hence
# CGO_CFLAGS rather than a #cgo directive of ours.
export CGO_CFLAGS ?= -O2 -D__BLST_PORTABLE__

# The whole suite on both engines; -race needs cgo, so the circl run has none.
unit:
	MILAGRO_EXPECT_ENGINE=blst MILAGRO_EXPECT_PORTABLE=1 CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...
	MILAGRO_EXPECT_ENGINE=circl CGO_ENABLED=0 $(GO) test -count=1 -timeout 20m ./...

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# The README's test command: interop peers, lint, all tests (interop
# included) with -race, every fuzz target briefly.
test: peers lint build unit fuzz

interop: peers build
	$(GO) test -race -count=1 -v ./interop/...

demo: build
	$(GO) run ./cmd/mtls demo

# Two D-TAs, two `ta serve` replicas each, on one local PostgreSQL (started
# and removed by the demo); one replica of each is killed mid-renewal.
demo-ha: peers build
	$(GO) run ./scripts/demo-ha $(BIN)

# Benchmarks: pairing steps and per-handshake totals, AEAD records, handshakes
# over an in-memory pipe, mtls.Conn throughput next to crypto/tls, full
# handshakes over loopback with server CPU per handshake, gRPC unary calls over
# mtls next to grpc-go on crypto/tls.
bench:
	CGO_ENABLED=1 $(GO) test -run='^$$' -bench=. -benchmem ./pairing ./ciphersuite ./handshake ./mtls ./dtls ./grpccreds ./bench
	CGO_ENABLED=0 $(GO) test -run='^$$' -bench=. -benchmem ./pairing ./bench

# The proxy pair next to an stunnel4 PSK pair on the same cores.
bench-proxy: build
	CGO_ENABLED=1 $(GO) test -run='^$$' -bench=Proxy -benchmem ./proxy
	CGO_ENABLED=0 $(GO) test -run='^$$' -bench=ProxyHandshakes -benchmem ./proxy

# Checks the systemd units of deploy/ (with the built binary in place of
# /usr/local/bin/mtls).
deploy-check: build
	@d=$$(mktemp -d); for f in deploy/systemd/*; do sed "s|/usr/local/bin/mtls|$(CURDIR)/$(BIN)|" $$f > $$d/$$(basename $$f); done; \
	  cd $$d && systemd-analyze verify ./*.socket ./*.service; rc=$$?; rm -rf $$d; exit $$rc

# The container image (docker or podman): deploy/Dockerfile with registry
# access, else deploy/Dockerfile.local around a static binary built here
# (IMAGE_OFFLINE=1 forces it). image-check runs it: --version, user 65532,
# no shell, and the whole demo inside the container.
image:
	./scripts/image.sh

image-check:
	./scripts/image-check.sh

clean:
	rm -rf bin
