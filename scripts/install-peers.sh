#!/usr/bin/env bash
# Makes sure every interop peer the tests start is installed: openssl,
# gnutls-bin (gnutls-serv, gnutls-cli), stunnel4, curl (HTTP identity mode:
# HTTP/1.1, h2c upgrade offers, HTTP/2 prior knowledge; the documentation's
# runnable blocks), python3 (the plain service of those blocks), systemd
# (systemd-analyze and systemd-socket-activate for the unit tests), iproute2
# (ip netns for the D-TA IPv6 flood test), PostgreSQL (the D-TA replica tests
# start their own server with initdb; as root they run it as the system user
# mtlspg, created here if missing), and a C compiler (the gnutls-cli
# 3.7.9 ECDHE-PSK work-around is an LD_PRELOAD shim).
#
# As root with apt-get, missing packages are installed (apt-get update runs
# once, first). Otherwise a missing peer is an error that names the packages
# to install: the interop tests never skip a peer.
set -euo pipefail
need=""
command -v openssl >/dev/null 2>&1 || need="$need openssl"
command -v gnutls-serv >/dev/null 2>&1 && command -v gnutls-cli >/dev/null 2>&1 || need="$need gnutls-bin"
command -v stunnel4 >/dev/null 2>&1 || command -v stunnel >/dev/null 2>&1 || need="$need stunnel4"
command -v curl >/dev/null 2>&1 || need="$need curl"
command -v cc >/dev/null 2>&1 || need="$need gcc"
command -v python3 >/dev/null 2>&1 || need="$need python3"
# The IPv6 /64 flood test runs the D-TA in a network namespace (ip netns).
command -v ip >/dev/null 2>&1 || need="$need iproute2"
# The systemd unit tests: systemd-analyze verify, systemd-socket-activate.
command -v systemd-analyze >/dev/null 2>&1 && command -v systemd-socket-activate >/dev/null 2>&1 || need="$need systemd"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
if [ "$(id -u)" = 0 ] && ! id mtlspg >/dev/null 2>&1; then
  useradd -r -M -d /nonexistent -s /usr/sbin/nologin mtlspg
fi
if [ -z "$need" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing interop peers:$need"
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need
  exit 0
fi
echo "missing interop peers; install the packages:$need" >&2
echo "  (Debian/Ubuntu: sudo apt-get install$need; make test installs them itself when run as root with apt-get)" >&2
exit 1
