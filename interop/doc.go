// Package interop holds tests that run this module's TLS stack (package mtls
// and the mtls command) against real, independently written peers started
// as processes on 127.0.0.1: openssl s_server / s_client and GnuTLS
// gnutls-serv / gnutls-cli, and stunnel4 in server and client mode, for
// every PSK suite each peer supports.
//
// A missing peer binary fails its tests, CI or not: `make test` first runs
// scripts/install-peers.sh, which installs openssl, gnutls-bin, stunnel4
// and gcc as root with apt-get and otherwise fails naming the packages.
package interop
