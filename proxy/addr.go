package proxy

import (
	"fmt"
	"net"
	"strings"
)

// SplitNetworkAddr splits a proxy address into the network and address
// net.Dial and net.Listen take: "unix:/run/app.sock" is a UNIX stream
// socket, anything else (HOST:PORT) is TCP.
func SplitNetworkAddr(addr string) (network, address string) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix", p
	}
	return "tcp", addr
}

// CheckLocalAddr returns nil when addr stays on this host: a UNIX socket,
// or HOST:PORT whose host is a loopback IP or "localhost". A bare :PORT or
// an unspecified host (0.0.0.0, ::) is not local. The proxy refuses a
// non-local plaintext side unless the operator opts out (--unsafe-target,
// --unsafe-listen), as ghostunnel does.
func CheckLocalAddr(addr string) error {
	network, a := SplitNetworkAddr(addr)
	if network == "unix" {
		if a == "" {
			return fmt.Errorf("%q: empty UNIX socket path", addr)
		}
		return nil
	}
	host, _, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("%q: host %q is not a loopback address", addr, host)
	}
	if !ip.IsLoopback() {
		return fmt.Errorf("%q: %s is not a loopback address", addr, ip)
	}
	return nil
}
